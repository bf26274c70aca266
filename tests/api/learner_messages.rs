//! What a learner reads when something is wrong says what to do, in words: the doctor on an
//! `http://` URL, on an untrusted certificate, on a missing credentials header; the start-up
//! lines' curl hint names the CA this start really uses.

use crate::helpers::*;

async fn doctor(args: &[&str]) -> (String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .arg("preflight")
        .args(args)
        .output()
        .await
        .expect("runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_doctor_says_why_an_http_url_and_an_untrusted_certificate_fail_without_a_stray_log_line()
 {
    let app = spawn_app().await;
    let port = app.addr.port();

    let (report, log) = doctor(&[&format!("http://localhost:{port}/delivery/all")]).await;
    assert!(
        report.contains("an https:// server called with http://"),
        "the hint for http:// against HTTPS: {report}"
    );
    assert!(log.trim().is_empty(), "no log line above the report: {log}");

    // Without --cacert: the system's roots do not know the dev CA.
    let (report, log) = doctor(&[&format!("https://localhost:{port}/delivery/all")]).await;
    assert!(report.contains("certificate is not trusted"), "{report}");
    assert!(
        !log.contains("ERROR"),
        "the TLS library's own error is not printed above the report: {log}"
    );
}

#[tokio::test]
async fn a_missing_credentials_header_is_named_as_missing_not_as_none() {
    let app = spawn_app_with(|args| args.cors.allow_credentials = false).await;
    let ca = app.dir.path().join("dev-ca.crt");

    let (report, _) = doctor(&[
        &app.url("/delivery/all"),
        "--cacert",
        &ca.display().to_string(),
        "--with-credentials",
    ])
    .await;

    assert!(report.contains("and it has none"), "{report}");
    assert!(!report.contains("None"), "{report}");
}

#[tokio::test]
async fn an_ephemeral_start_names_its_own_ca_in_the_curl_hint() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(BINARY)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-demo-page",
            "--ephemeral",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();

    let line = loop {
        let line = stderr
            .next_line()
            .await
            .expect("stderr")
            .expect("a serving line before exit");
        if line.contains("serving https://") {
            break line;
        }
    };

    assert!(
        !line.contains("--cacert certs/dev-ca.crt"),
        "the working directory has no certs/ with --ephemeral: {line}"
    );
    assert!(
        line.contains("--cacert /") && line.contains("dev-ca.crt"),
        "the temporary directory's CA: {line}"
    );
}
