//! Several instances started at once from one new folder (a test harness, `scripts` starting two
//! servers) generate the dev certificates once: every one of them serves a certificate that the
//! shared `certs/dev-ca.crt` verifies, round after round.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

async fn start(cwd: &Path, database: &str) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-demo-page"])
        .args(["--database-url", database])
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = stdout
        .next_line()
        .await
        .expect("stdout")
        .expect("a ready line");
    let ready: Value = serde_json::from_str(&line).expect("JSON");
    let port = ready["api"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    (child, port)
}

#[tokio::test]
async fn instances_started_together_in_a_new_folder_all_serve_what_the_shared_ca_verifies() {
    const ROUNDS: usize = 10;
    const INSTANCES: usize = 4;
    for round in 0..ROUNDS {
        let cwd = tempfile::tempdir().expect("tempdir");
        let starts = (0..INSTANCES).map(|i| {
            let cwd = cwd.path().to_owned();
            async move { start(&cwd, &format!("sqlite://db{i}.db")).await }
        });
        let servers = futures_util::future::join_all(starts).await;

        let ca = cwd.path().join("certs").join("dev-ca.crt");
        for (i, (_, port)) in servers.iter().enumerate() {
            let client = crate::helpers::client_builder(&ca, ([127, 0, 0, 1], *port).into(), false)
                .build()
                .expect("client");
            let health = client
                .get(format!("https://localhost:{port}/health"))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("round {round}, instance {i}: its certificate does not verify: {e:?}")
                });
            assert_eq!(health.status(), 200, "round {round}, instance {i}");
        }
    }
}
