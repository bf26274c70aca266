//! Every signal a process can catch stops the server gracefully and cleans up: `--ephemeral`'s
//! directory (its database and the dev CA's private key) and the ready file are gone afterwards,
//! and a start that fails leaves no stale ready file pointing at a dead port.

use std::path::Path;

use crate::helpers::*;

#[tokio::test]
async fn every_catchable_signal_stops_gracefully_and_removes_the_ephemeral_files() {
    for (name, signal) in [
        ("SIGHUP", libc::SIGHUP),
        ("SIGQUIT", libc::SIGQUIT),
        ("SIGUSR1", libc::SIGUSR1),
        ("SIGUSR2", libc::SIGUSR2),
        ("SIGINT", libc::SIGINT),
        ("SIGTERM", libc::SIGTERM),
    ] {
        let cwd = tempfile::tempdir().expect("tempdir");
        let (mut child, ready) = serve_in(
            cwd.path(),
            &[
                "--no-demo-page",
                "--ephemeral",
                "--ready-file",
                "ready.json",
            ],
        )
        .await;
        let database = ready["database"].as_str().expect("database").to_owned();
        let run_dir = Path::new(&database).parent().expect("dir").to_owned();
        assert!(run_dir.exists(), "{name}: {run_dir:?}");

        let pid = child.id().expect("pid") as i32;
        // SAFETY: signalling the child this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = child.wait().await.expect("exit");

        assert!(
            status.success(),
            "{name}: a graceful stop, not death: {status}"
        );
        assert!(!run_dir.exists(), "{name}: {run_dir:?} removed");
        assert!(
            !cwd.path().join("ready.json").exists(),
            "{name}: the ready file removed"
        );
    }
}

#[tokio::test]
async fn a_start_that_fails_leaves_no_ready_file_behind() {
    let cwd = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        cwd.path().join("ready.json"),
        "{\"api\":\"https://127.0.0.1:1\"}",
    )
    .expect("a previous run's ready file");
    // The port is taken: the start fails before it serves anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let bind = format!("127.0.0.1:{port}");

    let status = command_in(
        cwd.path(),
        &[
            "serve",
            "--no-demo-page",
            "--bind",
            &bind,
            "--ephemeral",
            "--ready-file",
            "ready.json",
        ],
    )
    .status()
    .await
    .expect("the binary runs");

    assert!(!status.success(), "the port is taken");
    assert!(
        !cwd.path().join("ready.json").exists(),
        "no ready file pointing at a server that is not there"
    );
}
