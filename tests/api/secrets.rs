//! Secrets stay secret: no password or Authorization value reaches the log, even at debug level,
//! and no `--help` prints a database password from the environment.

use crate::helpers::*;

/// Secrets never reach the log, even at debug level: run the real binary, log in right and wrong,
/// and search everything it printed.
#[tokio::test]
async fn neither_passwords_nor_the_authorization_header_reach_the_log() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "debug", &["--shutdown-grace", "1"]).await;
    for (password, status) in [(PASSWORD, 200), ("a-wrong-secret", 401)] {
        let res = served.get_all_as(USER, password).await;
        assert_eq!(res.status(), status, "{password}");
    }
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
        let (stdout, stderr) = output_text(&out);
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
