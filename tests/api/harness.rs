//! Starting the real binary the way a test harness does: a free port, the ready line on stdout
//! (and in --ready-file), a throwaway database, seeded data; and everything gone at exit.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::*;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn ephemeral_and_seeded_it_says_where_it_is_serves_the_seed_and_leaves_nothing_behind() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let seed = json!({
        "deliveries": [
            {"reference": "SEED-1", "recipient": "Ana", "address": "Rua 1"},
            {"reference": "SEED-2", "recipient": "Bo", "address": "Gata 2", "status": "delivered"},
        ],
        "users": [{"name": "tester", "password": "a long test password"}],
    });
    std::fs::write(cwd.path().join("seed.json"), seed.to_string()).expect("seed file");
    let ready_file = cwd.path().join("ready.json");
    let (mut child, ready) = serve_in(
        cwd.path(),
        &[
            "--no-demo-page",
            "--ephemeral",
            "--seed",
            "seed.json",
            "--ready-file",
            "ready.json",
        ],
    )
    .await;
    assert_eq!(ready["demo_page"], Value::Null, "--no-demo-page");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_file).expect("ready file"))
            .expect("JSON");
    assert_eq!(file, ready, "--ready-file holds the same object");

    let api = ready["api"].as_str().expect("api");
    let port: u16 = api
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!(api.starts_with("https://127.0.0.1:") && port != 0, "{api}");
    let database = Path::new(ready["database"].as_str().expect("database")).to_owned();
    let ca = Path::new(ready["ca_cert"].as_str().expect("the dev CA")).to_owned();
    assert!(database.is_absolute() && database.exists(), "{database:?}");
    assert!(
        !database.starts_with(cwd.path()),
        "ephemeral: not in the working directory"
    );
    assert!(ca.exists(), "{ca:?}");
    let run_dir = database.parent().expect("dir").to_owned();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&run_dir)
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the database and the CA's key are for this user only"
        );
    }

    // HTTP/1.1: actix-http closes idle HTTP/1.1 connections at a graceful stop, while an idle
    // HTTP/2 one holds it for the grace period (no GOAWAY; see README).
    let served = Api::from_ready_line(&ready).http1_only();
    let list = served.get_all_as("tester", "a long test password").await;
    assert_eq!(list.status(), 200);
    let list = json(list).await;
    let seeded: Vec<(&str, i64)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["reference"].as_str().expect("ref"),
                d["id"].as_i64().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        seeded,
        [("SEED-1", 1), ("SEED-2", 2)],
        "the seed, not the sample; ids from 1"
    );
    let demo = served.get_all_as(USER, PASSWORD).await;
    assert_eq!(demo.status(), 401, "the seed's users replace the demo user");

    // A graceful stop removes the throwaway directory and the ready file.
    let pid = ready["pid"].as_u64().expect("pid") as i32;
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().await.expect("exit");
    assert!(status.success(), "{status}");
    assert!(!run_dir.exists(), "{run_dir:?} removed at exit");
    assert_eq!(
        entries(cwd.path()),
        ["seed.json"],
        "nothing else in the working directory"
    );
}

#[tokio::test]
async fn a_seed_is_checked_like_a_post_body_and_never_merged_into_an_existing_database() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let bad = json!({"deliveries": [{"reference": "OK", "recipient": "A", "address": "B"},
                                    {"reference": "X", "recipient": "A", "address": "B", "status": "lost"}]});
    std::fs::write(cwd.path().join("bad.json"), bad.to_string()).expect("write");
    let out = command_in(
        cwd.path(),
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-demo-page",
            "--ephemeral",
            "--seed",
            "bad.json",
        ],
    )
    .output()
    .await
    .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("deliveries[1]") && stderr.contains("status"),
        "{stderr}"
    );

    // An existing database is never seeded over.
    let db = cwd.path().join("existing.db");
    let created = cli(&["user", "list"], &format!("sqlite://{}", db.display()), "").await;
    assert!(created.status.success(), "{created:?}");
    let good = json!({"deliveries": []});
    std::fs::write(cwd.path().join("good.json"), good.to_string()).expect("write");
    let out = command_in(
        cwd.path(),
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-demo-page",
            "--seed",
            "good.json",
        ],
    )
    .env("DATABASE_URL", format!("sqlite://{}", db.display()))
    .output()
    .await
    .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
}

/// A new database is at `store::NEW_DATABASE_REVISION` (what `--seed` requires), on either engine.
#[tokio::test]
async fn a_new_database_is_at_the_revision_seed_expects() {
    let dir = certs();
    let db = open_db(&database_url(dir.path()).await).await;
    let revision = scalar(&db, "SELECT revision FROM deliveries_revision").await;
    assert_eq!(revision, delivery_api::store::NEW_DATABASE_REVISION);
}

/// A local user who can write to the ready file's directory cannot make the server overwrite
/// another file: the ready file goes through a new temporary file created exclusively under a
/// random name, never through a name planted in advance.
#[tokio::test]
async fn the_ready_file_is_never_written_through_a_planted_link() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let victim = cwd.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    for planted in ["ready.partial", "ready.json.partial", ".ready.json.tmp"] {
        std::os::unix::fs::symlink(&victim, cwd.path().join(planted)).expect("symlink");
    }
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

    let file = std::fs::read_to_string(cwd.path().join("ready.json")).expect("ready file");
    let file: Value = serde_json::from_str(&file).expect("JSON");
    assert_eq!(file, ready);
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious",
        "the planted links were not followed"
    );
    let pid = ready["pid"].as_u64().expect("pid") as i32;
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(child.wait().await.expect("exit").success());
}
