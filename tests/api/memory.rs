//! One user's list must not take the server's memory: a big list is built once per revision by
//! one request, and sent to every reader as slices of that one buffer, so readers that never
//! read (or many at once) hold no copy of it. Measured on the real binary's resident memory.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

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
async fn stalled_reader(api: &Api) -> Tls {
    let mut stream = api.tls(&[b"http/1.1"]).await;
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", USER, PASSWORD),
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
    let seed = seed.display().to_string();
    let (server, ready) = serve_in(
        dir.path(),
        &["--no-demo-page", "--ephemeral", "--seed", &seed],
    )
    .await;
    let pid = server.id().expect("pid");
    let api = Api::from_ready_line(&ready);
    let before = rss(pid);

    // Eight at once, at a revision nobody has read yet, none of them reading the body.
    let readers = futures_util::future::join_all((0..8).map(|_| stalled_reader(&api)));
    let readers = readers.await;
    let held = rss(pid);

    // The size of the list as sent, read in full by a ninth client.
    let mut full = stalled_reader(&api).await;
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
    drop(server);
}
