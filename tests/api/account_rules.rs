//! One rule for user names and passwords, wherever an account is made (`user add`, `--seed`):
//! no name that prints as something else, no password an attacker tries first, and a refused
//! `--seed` leaves no half-made database behind, so the corrected retry just works.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

/// `delivery-api ARGS…` in `cwd`, with a standard input the test writes to.
fn delivery_api(cwd: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = command_in(cwd, args);
    command.stdin(Stdio::piped());
    command
}

/// `user add NAME --password-stdin` with `password` on stdin: (success, stderr).
async fn user_add(cwd: &Path, name: &str, password: &str) -> (bool, String) {
    let mut child = delivery_api(
        cwd,
        &[
            "user",
            "add",
            name,
            "--password-stdin",
            "--database-url",
            "sqlite://users.db",
        ],
    )
    .spawn()
    .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .expect("password");
    drop(stdin);
    let out = child.wait_with_output().await.expect("exit");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn user_add_refuses_names_that_print_as_something_else_and_passwords_tried_first() {
    let cwd = tempfile::tempdir().expect("tempdir");
    for (name, password, why) in [
        ("alice", "12345678", "a leaked password"),
        ("alice", "password", "a leaked password"),
        ("alice", "        ", "only spaces"),
        ("alice", "short", "too short"),
        (" ", "correct horse battery", "a blank name"),
        ("bob\tsmith", "correct horse battery", "a tab in the name"),
        (
            "eve\u{1b}[2J",
            "correct horse battery",
            "an escape in the name",
        ),
    ] {
        let (ok, stderr) = user_add(cwd.path(), name, password).await;
        assert!(!ok, "{why}: {name:?} / {password:?} was accepted");
        assert!(stderr.contains("error:"), "{why}: {stderr}");
    }
    let (ok, stderr) = user_add(cwd.path(), "alice", "correct horse battery").await;
    assert!(ok, "a good name and password: {stderr}");
}

#[tokio::test]
async fn a_refused_seed_leaves_no_database_and_the_corrected_retry_works() {
    let cwd = tempfile::tempdir().expect("tempdir");
    dev_certs(cwd.path());
    let seed = |password: &str| {
        serde_json::json!({
            "deliveries": [{"reference": "S-1", "recipient": "Ana", "address": "Rua 1"}],
            "users": [{"name": "tester", "password": password}],
        })
        .to_string()
    };
    std::fs::write(cwd.path().join("seed.json"), seed("password1")).expect("seed");
    let args = [
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--no-demo-page",
        "--database-url",
        "sqlite://seeded.db",
        "--seed",
        "seed.json",
    ];

    let out = delivery_api(cwd.path(), &args)
        .output()
        .await
        .expect("the binary runs");

    assert!(!out.status.success(), "a leaked password in the seed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("users[0]"), "names the entry: {stderr}");
    assert!(
        !cwd.path().join("seeded.db").exists(),
        "nothing was created for a seed that was refused"
    );

    std::fs::write(cwd.path().join("seed.json"), seed("correct horse battery")).expect("seed");
    let mut child = delivery_api(cwd.path(), &args)
        .spawn()
        .expect("the binary runs");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = stdout.next_line().await.expect("stdout");
    assert!(
        ready.is_some_and(|l| l.contains("\"event\":\"ready\"")),
        "the corrected seed is loaded"
    );
    let pid = child.id().expect("pid") as i32;
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(child.wait().await.expect("exit").success());
}

fn dev_certs(dir: &Path) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    delivery_api::tls::dev_ca::generate(&certs).expect("dev certificates");
}
