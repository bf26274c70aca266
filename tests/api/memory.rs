//! One user's list must not take the server's memory: a big list is built once per revision by
//! one request, and sent to every reader as slices of that one buffer, so readers that never
//! read (or many at once) hold no copy of it. Measured on the real binary's resident memory.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

/// Deliveries of the largest size a client may create: 500 characters of 4 UTF-8 bytes per
/// text field, about 6 KB each as JSON.
fn largest_deliveries(count: usize) -> Value {
    let text = "\u{1D11E}".repeat(500);
    let deliveries: Vec<Value> = (0..count)
        .map(|i| {
            let reference: String = format!("{i:08}-{text}").chars().take(500).collect();
            json!({"reference": reference, "recipient": text, "address": text})
        })
        .collect();
    json!({ "deliveries": deliveries })
}

/// Resident memory of `pid`, in bytes (Linux).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A TLS connection that asks for the whole list, reads the response head, and then reads
/// nothing more: the server is left holding whatever it buffered for it.
async fn stalled_reader(
    tls: Arc<rustls::ClientConfig>,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS");
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", crate::helpers::USER, crate::helpers::PASSWORD),
    );
    stream
        .write_all(
            format!(
                "GET /delivery/all HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

#[tokio::test]
async fn readers_that_never_read_a_big_list_hold_no_copy_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, largest_deliveries(4_000).to_string()).expect("seed file");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-demo-page",
            "--ephemeral",
        ])
        .arg("--seed")
        .arg(&seed)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut stdout = tokio::io::BufReader::new(server.stdout.take().expect("stdout")).lines();
    let ready: Value = serde_json::from_str(
        &stdout
            .next_line()
            .await
            .expect("stdout")
            .expect("a ready line"),
    )
    .expect("JSON");
    let pid = server.id().expect("pid");
    let port: u16 = ready["api"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let ca = std::fs::read(ready["ca_cert"].as_str().expect("the dev CA")).expect("CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&ca) {
        roots.add(cert).expect("CA certificate");
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let before = rss(pid);

    // Eight at once, at a revision nobody has read yet, none of them reading the body.
    let readers = futures_util::future::join_all((0..8).map(|_| stalled_reader(tls.clone(), port)));
    let readers = readers.await;
    let held = rss(pid);

    // The size of the list as sent, read in full by a ninth client.
    let mut full = stalled_reader(tls.clone(), port).await;
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while !body.ends_with(b"]") {
        let n = full.read(&mut chunk).await.expect("body");
        assert!(n > 0, "the body ended early");
        body.extend_from_slice(&chunk[..n]);
    }
    let list = body.len() as u64;
    let grown = held.saturating_sub(before);
    eprintln!(
        "list {} MB; resident before {} MB, with 8 stalled readers {} MB (+{} MB)",
        list >> 20,
        before >> 20,
        held >> 20,
        grown >> 20
    );
    assert!(list > 20 << 20, "a big list: {list} bytes");
    // One copy of the body, and the rows' transient memory: not one copy per reader (8x).
    assert!(
        grown < 3 * list,
        "8 stalled readers grew the server by {} MB for a {} MB list",
        grown >> 20,
        list >> 20
    );
    drop(readers);
    drop(full);
}

/// The PEM certificates in `pem`.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .expect("PEM")
}
