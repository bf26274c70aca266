//! `delivery-api user add|list|remove`: a user added while the server runs logs in at once, with a
//! password stored only as an argon2 hash; every command names the absolute database file it used.

use crate::helpers::*;

#[tokio::test]
async fn a_user_added_from_the_cli_can_log_in_and_its_password_is_only_hashed() {
    let app = spawn_app().await;
    let db = app.db_url.clone();

    let out = cli(
        &["user", "add", "alice", "--password-stdin"],
        &db,
        "correct horse battery\n",
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["user", "list"], &db, "").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\ndemo\n");

    let stored: String = on_db!(&app.db, |pool| sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE name = 'alice'"
    )
    .fetch_one(pool)
    .await)
    .expect("row");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("correct horse"));

    let res = app.get_all_as("alice", "correct horse battery").await;
    assert_eq!(res.status(), 200);

    let out = cli(&["user", "remove", "alice"], &db, "").await;
    assert!(out.status.success());
    let out = cli(&["user", "remove", "alice"], &db, "").await;
    assert!(
        !out.status.success(),
        "removing twice says there is no such user"
    );
}

#[tokio::test]
async fn an_empty_password_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = cli(&["user", "add", "bob", "--password-stdin"], &db, "\n").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

/// A relative `--database-url` (the default, `sqlite://data/delivery.db`, is one) depends on the
/// directory the command runs in: every `user` subcommand names the absolute file it used.
#[tokio::test]
async fn user_commands_name_the_absolute_database_file_they_changed() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let abs = std::fs::canonicalize(cwd.path())
        .expect("canonical")
        .join("data/delivery.db");
    let abs = abs.display();
    let in_cwd = |c: &mut tokio::process::Command| {
        c.current_dir(cwd.path());
    };
    let db = "sqlite://data/delivery.db";
    let add = ["user", "add", "bob", "--password-stdin"];

    let out = cli_with(&add, db, "correct horse battery\n", in_cwd)
        .await
        .expect("runs");
    assert!(out.status.success(), "{:?}", output_text(&out));
    assert_eq!(
        output_text(&out).0,
        format!("user \"bob\" added to {abs}\n")
    );

    let out = cli_with(&add, db, "another good password\n", in_cwd)
        .await
        .expect("runs");
    assert_eq!(
        output_text(&out).0,
        format!("user \"bob\" updated (new password) in {abs}\n")
    );

    let out = cli_with(&["user", "list"], db, "", in_cwd)
        .await
        .expect("runs");
    let (stdout, stderr) = output_text(&out);
    assert_eq!(
        stdout, "bob\ndemo\n",
        "standard output stays one name a line"
    );
    assert!(stderr.contains(&format!("users in {abs}")), "{stderr}");

    let remove = ["user", "remove", "bob"];
    let out = cli_with(&remove, db, "", in_cwd).await.expect("runs");
    assert_eq!(
        output_text(&out).0,
        format!("user \"bob\" removed from {abs}\n")
    );
    let out = cli_with(&remove, db, "", in_cwd).await.expect("runs");
    assert!(!out.status.success());
    assert!(
        output_text(&out)
            .1
            .contains(&format!("no user named \"bob\" in {abs}")),
        "{:?}",
        output_text(&out)
    );
}
