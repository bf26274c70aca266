//! The real binary: `user add|list|remove`, and start-up refusing bad configuration.

use reqwest::Method;

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

    let res = app
        .request(Method::GET, "/delivery/all", ORIGIN)
        .basic_auth("alice", Some("correct horse battery"))
        .send()
        .await
        .expect("sent");
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
async fn an_invalid_origin_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    for origin in ["http://localhost:4200/", "localhost:4200", "*"] {
        let out = cli(
            &[
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--no-demo-page",
                "--allowed-origin",
                origin,
            ],
            &db,
            "",
        )
        .await;
        assert!(!out.status.success(), "{origin} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(origin), "{origin}: {stderr}");
    }
}

#[tokio::test]
async fn an_empty_password_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = cli(&["user", "add", "bob", "--password-stdin"], &db, "\n").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

#[tokio::test]
async fn a_taken_demo_page_port_leaves_the_api_running_without_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(dir.path()).expect("certs");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut args = delivery_api::config::ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().expect("addr");
    args.demo.demo_page_bind = taken.local_addr().expect("addr");
    args.shutdown_grace = 1;
    args.db.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.tls.cert = Some(dir.path().join("localhost.crt"));
    args.tls.key = Some(dir.path().join("localhost.key"));

    let app = delivery_api::startup::Application::build(args)
        .await
        .expect("the API starts anyway");

    assert_eq!(app.demo_page_addr(), None);
    let addr = app.addr();
    let client = client_trusting(&dir.path().join("dev-ca.crt"), addr);
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let res = client
        .get(format!("https://localhost:{}/health", addr.port()))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(res.status(), 200);
    drop(client);
    handle.stop(true).await;
    server.await.expect("task").expect("stopped cleanly");
}

/// Secrets never reach the log, even at debug level: run the real binary, log in right and wrong,
/// and search everything it printed.
#[tokio::test]
async fn neither_passwords_nor_the_authorization_header_reach_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(dir.path()).expect("certs");
    let mut served = serve_binary(dir.path(), "debug", &["--shutdown-grace", "1"]).await;
    let client = served.client(dir.path());
    let url = served.url("/delivery/all");
    for password in ["demo-password", "a-wrong-secret"] {
        let res = client
            .get(&url)
            .basic_auth("demo", Some(password))
            .send()
            .await
            .expect("sent");
        assert!(res.status() == 200 || res.status() == 401);
    }
    drop(client);
    served.child.start_kill().expect("kill");
    let log = served.drain_log().await.to_owned();

    assert!(log.contains("DEBUG"), "the log ran at debug level:\n{log}");
    for secret in [
        "a-wrong-secret",
        "ZGVtbzpkZW1vLXBhc3N3b3Jk",     // base64("demo:demo-password")
        "ZGVtbzphLXdyb25nLXNlY3JldA==", // base64("demo:a-wrong-secret")
    ] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn the_demo_page_answers_head_like_get() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page.clone().expect("the page is served");
    let client = &app.client; // plain HTTP here: its TLS settings do not matter

    let get = client.get(&page).send().await.expect("GET");
    let head = client.head(&page).send().await.expect("HEAD");

    assert_eq!(get.status(), 200);
    assert_eq!(
        head.status(),
        200,
        "HEAD answers like GET (RFC 9110 §9.3.2)"
    );
    assert_eq!(
        header(head.headers(), "content-type"),
        header(get.headers(), "content-type")
    );
    assert!(
        head.text().await.expect("body").is_empty(),
        "HEAD has no body"
    );
}

#[tokio::test]
async fn a_certs_directory_that_cannot_be_read_is_reported_as_a_read_failure() {
    // `certs` is a file here, so nothing under it can be read (ENOTDIR); with a non-root user
    // a directory without permissions does the same (EACCES). Either way: the message says what
    // could not be read, not that a certificate could not be written.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("certs"), "not a directory").expect("write");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-demo-page"])
        .current_dir(dir.path())
        .env("DATABASE_URL", "sqlite://t.db")
        .env("RUST_LOG", "off")
        .output()
        .await
        .expect("runs");

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read certs/localhost.crt"),
        "names the read failure: {stderr}"
    );
    assert!(
        !stderr.contains("write") && !stderr.contains("create"),
        "{stderr}"
    );
}

/// A `DATABASE_URL` for an engine this build does not serve (`mysql://…`) would be taken for a
/// file name and create a SQLite file named `mysql:` in the working directory. Start-up stops and
/// says why.
#[tokio::test]
async fn a_database_url_for_another_engine_stops_with_the_reason_and_creates_nothing() {
    let cwd = tempfile::tempdir().expect("tempdir");
    for args in [
        &["user", "list"][..],
        &["serve", "--bind", "127.0.0.1:0"][..],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
            .args(args)
            .current_dir(cwd.path())
            .env("DATABASE_URL", "mysql://app@db.example:3306/deliveries")
            .env("RUST_LOG", "off")
            .output()
            .await
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("\"mysql\"") && stderr.contains("does not serve"),
            "{args:?}: {stderr}"
        );
        assert_nothing_created(cwd.path(), args);
    }
}

/// `DATABASE_URL=postgres://…` with nothing listening there: start-up stops with a message that
/// names the host and port (and the cause), never the password, and creates nothing.
#[tokio::test]
async fn a_postgres_database_that_is_down_stops_start_up_naming_host_and_port() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port(); // the listener is dropped: nothing listens there now
    let url = format!("postgres://app:s3cret-pw@127.0.0.1:{closed}/deliveries");
    for args in [
        &["user", "list"][..],
        &["serve", "--bind", "127.0.0.1:0"][..],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
            .args(args)
            .current_dir(cwd.path())
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "info")
            .output()
            .await
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("on 127.0.0.1:{closed}"))
                && stderr.contains("\"deliveries\"")
                && stderr.contains("refused"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("s3cret-pw"), "{args:?}: {stderr}");
        assert_nothing_created(cwd.path(), args);
    }
}

fn assert_nothing_created(dir: &std::path::Path, args: &[&str]) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|name| name != "certs")
        .collect();
    assert!(left.is_empty(), "{args:?} created {left:?}");
}

/// Standard output and standard error of a run, as text.
fn lines(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    assert!(out.status.success(), "{:?}", lines(&out));
    assert_eq!(lines(&out).0, format!("user \"bob\" added to {abs}\n"));

    let out = cli_with(&add, db, "another good password\n", in_cwd)
        .await
        .expect("runs");
    assert_eq!(
        lines(&out).0,
        format!("user \"bob\" updated (new password) in {abs}\n")
    );

    let out = cli_with(&["user", "list"], db, "", in_cwd)
        .await
        .expect("runs");
    let (stdout, stderr) = lines(&out);
    assert_eq!(
        stdout, "bob\ndemo\n",
        "standard output stays one name a line"
    );
    assert!(stderr.contains(&format!("users in {abs}")), "{stderr}");

    let remove = ["user", "remove", "bob"];
    let out = cli_with(&remove, db, "", in_cwd).await.expect("runs");
    assert_eq!(lines(&out).0, format!("user \"bob\" removed from {abs}\n"));
    let out = cli_with(&remove, db, "", in_cwd).await.expect("runs");
    assert!(!out.status.success());
    assert!(
        lines(&out)
            .1
            .contains(&format!("no user named \"bob\" in {abs}")),
        "{:?}",
        lines(&out)
    );
}

/// `sqlite://notes.txt/delivery.db` where notes.txt is a file: the message names the directory
/// that could not be created and the file in its way, for `user` and for `serve`.
#[tokio::test]
async fn a_database_path_under_a_regular_file_names_the_file_in_the_way() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(cwd.path()).expect("canonical");
    std::fs::write(cwd.path().join("notes.txt"), "a file").expect("write");
    for (db, dir) in [
        ("sqlite://notes.txt/delivery.db", "notes.txt"),
        ("sqlite://notes.txt/data/delivery.db", "notes.txt/data"),
    ] {
        for args in [
            &["user", "list"][..],
            &["serve", "--bind", "127.0.0.1:0", "--no-demo-page"][..],
        ] {
            let out = cli_with(args, db, "", |c| {
                c.current_dir(cwd.path());
            })
            .await
            .expect("runs");
            let stderr = lines(&out).1;
            assert!(!out.status.success(), "{db} {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "cannot create the database directory {}: {} is a file, not a directory",
                    root.join(dir).display(),
                    root.join("notes.txt").display()
                )),
                "{db} {args:?}: {stderr}"
            );
        }
    }
}

/// An existing directory this user may not write: SQLite alone says "unable to open database
/// file"; the message names the directory. Root may write anywhere, so under root the binary
/// runs as `nobody` (uid 65534).
#[tokio::test]
async fn a_database_directory_that_cannot_be_written_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(cwd.path()).expect("canonical");
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    mode(cwd.path(), 0o755);
    let locked = cwd.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let existing = cwd.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let out = cli_with(
        &["user", "list"],
        "sqlite://existing/delivery.db",
        "",
        |c| {
            c.current_dir(cwd.path());
        },
    )
    .await
    .expect("runs");
    assert!(out.status.success(), "{:?}", lines(&out));
    // A database that is there and writable, in a directory that is not: its -wal and -shm
    // files cannot be created.
    mode(&existing.join("delivery.db"), 0o666);
    // No -wal/-shm left by that run (SQLite may keep the -shm): nobody would read through
    // root's, and the case is a directory where they cannot be created.
    for leftover in ["delivery.db-wal", "delivery.db-shm"] {
        let _ = std::fs::remove_file(existing.join(leftover));
    }
    mode(&locked, 0o555);
    mode(&existing, 0o555);
    let as_root = unsafe { libc::geteuid() } == 0;
    // Root writes anywhere: run as nobody, from a copy of the binary nobody can reach (the
    // build's own may sit under a directory only root can enter).
    let program = cwd.path().join("delivery-api");
    std::fs::copy(env!("CARGO_BIN_EXE_delivery-api"), &program).expect("copy the binary");
    mode(&program, 0o755);

    for (db, message) in [
        (
            "sqlite://locked/delivery.db",
            format!(
                "its directory {} is not writable",
                root.join("locked").display()
            ),
        ),
        (
            "sqlite://existing/delivery.db",
            format!(
                "its directory {} is not writable",
                root.join("existing").display()
            ),
        ),
        (
            "sqlite://locked/data/delivery.db",
            format!(
                "cannot create the database directory {}: Permission denied",
                root.join("locked/data").display()
            ),
        ),
    ] {
        let out = cli_program(&program, &["user", "list"], db, "", |c| {
            c.current_dir(cwd.path());
            if as_root {
                c.uid(65534).gid(65534);
            }
        })
        .await
        .expect("the binary runs");
        let (stdout, stderr) = lines(&out);
        assert!(!out.status.success(), "{db}: {stdout} {stderr}");
        assert!(stderr.contains(&message), "{db}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&locked).expect("dir").collect();
    assert!(left.is_empty(), "nothing is left in {locked:?}: {left:?}");
}

/// A `postgres://` URL in DATABASE_URL carries a password: no `--help` prints it.
#[tokio::test]
async fn help_never_prints_the_database_password_from_the_environment() {
    for args in [
        &["--help"][..],
        &["serve", "--help"][..],
        &["user", "list", "--help"][..],
        &["user", "add", "--help"][..],
        &["copy-data", "--help"][..],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
            .args(args)
            .env(
                "DATABASE_URL",
                "postgres://app:s3cret-pw@db.example:5432/deliveries",
            )
            .env(
                "DELIVERY_API_COPY_FROM",
                "postgres://old:0ther-pw@db.example/old",
            )
            .output()
            .await
            .expect("the binary runs");
        let (stdout, stderr) = lines(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            stdout.contains("DATABASE_URL"),
            "{args:?}: names the variable"
        );
        for secret in ["s3cret-pw", "0ther-pw"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{args:?}: {stdout}"
            );
        }
    }
}
