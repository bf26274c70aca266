//! Start-up refuses an unsafe or invalid configuration, saying why and creating nothing; when it
//! does start, it says what browsers are checked against.
//!
//! Refused: a public bind with the demo password, a public metrics bind, `*` with credentials, a
//! bad origin, a certificate or a database it cannot use.

use std::process::Stdio;

use delivery_api::startup::Application;

use crate::helpers::*;

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
async fn a_star_for_headers_with_credentials_is_refused_at_start_up_with_the_reason() {
    let app = spawn_app().await;
    for flag in ["allow", "expose"] {
        let mut args = app.args_on("127.0.0.1:0");
        let star = vec![delivery_api::cors::HeaderRule::Any];
        if flag == "allow" {
            args.cors.allow_headers = star;
        } else {
            args.cors.expose_headers = star;
        }
        let err = delivery_api::startup::Application::build(args)
            .await
            .err()
            .expect("refused");
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!("--{flag}-header *")) && message.contains("Authorization"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_public_bind_is_refused_while_the_demo_password_is_the_default() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let args = |bind: &str| app.args_on(bind);

    let err = Application::build(args("0.0.0.0:0"))
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("default password") && message.contains("user add demo"),
        "{message}"
    );

    // Once the password is changed, the same bind is accepted.
    let out = cli(
        &["user", "add", "demo", "--password-stdin"],
        &db,
        "a-better-password\n",
    )
    .await;
    assert!(out.status.success());
    let app2 = Application::build(args("0.0.0.0:0"))
        .await
        .expect("accepted");
    assert!(!app2.addr().ip().is_loopback());
}

#[tokio::test]
async fn a_public_bind_is_refused_when_the_default_password_cannot_be_checked() {
    let app = spawn_app().await;
    // A database whose users cannot be read: the check errs, and an error is not a "no".
    app.execute("ALTER TABLE users RENAME TO users_elsewhere")
        .await;
    let err = Application::build(app.args_on("0.0.0.0:0"))
        .await
        .err()
        .expect("refused");

    let message = format!("{err:#}");
    assert!(message.contains("cannot check"), "{message}");
}

#[tokio::test]
async fn a_metrics_bind_other_machines_can_reach_needs_metrics_public() {
    let app = spawn_app().await;
    let mut args = app.args_on("127.0.0.1:0");
    args.operating.metrics_bind = Some("0.0.0.0:0".parse().expect("addr"));

    let refused = Application::build(args.clone())
        .await
        .err()
        .expect("refused");

    let message = format!("{refused:#}");
    assert!(
        message.contains("0.0.0.0:0"),
        "names the address: {message}"
    );
    assert!(message.contains("no authentication"), "says why: {message}");
    assert!(
        message.contains("--metrics-public"),
        "names the flag: {message}"
    );
    args.operating.metrics_public = true;
    let public = Application::build(args)
        .await
        .expect("starts with --metrics-public");
    let addr = public.metrics_addr().expect("serves metrics");
    assert!(addr.ip().is_unspecified(), "{addr}");
}

#[tokio::test]
async fn the_binary_refuses_a_public_metrics_bind_and_says_why() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-demo-page",
            "--ephemeral",
        ])
        .env("DELIVERY_API_METRICS_BIND", "0.0.0.0:0")
        .current_dir(cwd.path())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to serve metrics on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no ready line: {:?}", out.stdout);
}

#[tokio::test]
async fn a_missing_certificate_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = delivery_api::config::ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().expect("addr");
    args.db.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.tls.cert = Some(dir.path().join("missing.crt"));
    args.tls.key = Some(dir.path().join("missing.key"));

    let err = Application::build(args)
        .await
        .err()
        .expect("start-up fails");

    let message = format!("{err:#}");
    assert!(message.contains("missing.crt"), "names the file: {message}");
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
            let stderr = output_text(&out).1;
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
    assert!(out.status.success(), "{:?}", output_text(&out));
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
        let (stdout, stderr) = output_text(&out);
        assert!(!out.status.success(), "{db}: {stdout} {stderr}");
        assert!(stderr.contains(&message), "{db}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&locked).expect("dir").collect();
    assert!(left.is_empty(), "nothing is left in {locked:?}: {left:?}");
}

#[tokio::test]
async fn start_up_says_what_browsers_are_checked_against() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "warn", &[]).await;
    let line = served
        .wait_for_log_line(|l| l.trim_start().starts_with("certificate:"))
        .await;
    let log = &served.log;

    let db = if on_postgres() {
        let url = database_url(dir.path()).await;
        let (port, name) = url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split_once('/'))
            .expect("port/name");
        format!("PostgreSQL database {name:?} on 127.0.0.1:{port}")
    } else {
        let db = std::fs::canonicalize(dir.path().join("test.db")).expect("the database exists");
        db.display().to_string()
    };
    for expected in [
        "browsers are checked against:".to_owned(),
        // Nobody passed the flag: the line says it is the default, and how to change it.
        "allowed origins:  http://localhost:4200 (the default; change it with --allowed-origin)"
            .to_owned(),
        "demo page origin: off".to_owned(),
        format!("database:         {db}"),
    ] {
        assert!(log.contains(&expected), "{expected:?} in\n{log}");
    }
    let cert = dir.path().join("localhost.crt");
    assert!(
        line.contains(&format!(
            "{} (the generated dev certificate",
            cert.display()
        )),
        "{line}"
    );
}
