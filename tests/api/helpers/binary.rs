//! The real binary in its own process: `delivery-api serve` ([`Served`], for kill -9, signals and
//! its log, spoken to through [`Api`] like the in-process app) and the other subcommands ([`cli`]).

use std::path::Path;
use std::time::Duration;

use delivery_api::tls::dev_ca;
use tempfile::TempDir;

use super::{Api, database_url};

/// The binary the suite built.
pub const BINARY: &str = env!("CARGO_BIN_EXE_delivery-api");

/// Runs the real binary (`delivery-api ARGS`) on the database `db`, with `stdin` as its input.
/// tokio's process API: a blocking wait would stall the runtime that drives the test's server.
pub async fn cli(args: &[&str], db: &str, stdin: &str) -> std::process::Output {
    cli_with(args, db, stdin, |_| {})
        .await
        .expect("the binary runs")
}

/// [`cli`], with `setup` adjusting the command first (its working directory, its user); an
/// error only when the binary could not be started.
pub async fn cli_with(
    args: &[&str],
    db: &str,
    stdin: &str,
    setup: impl FnOnce(&mut tokio::process::Command),
) -> std::io::Result<std::process::Output> {
    let program = Path::new(BINARY);
    cli_program(program, args, db, stdin, setup).await
}

/// Standard output and standard error of a run, as text.
pub fn output_text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`cli_with`], running `program` (a copy of the binary another user can reach).
pub async fn cli_program(
    program: &Path,
    args: &[&str],
    db: &str,
    stdin: &str,
    setup: impl FnOnce(&mut tokio::process::Command),
) -> std::io::Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    setup(&mut command);
    let mut child = command.spawn()?;
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    child.wait_with_output().await
}

/// The real binary, serving in its own process (for kill -9, signals and its log).
pub struct Served {
    /// How to reach it (`served.get_all()`, `served.url(…)`…): see [`Api`].
    api: Api,
    pub child: tokio::process::Child,
    /// The API's port (also `served.addr.port()`).
    pub port: u16,
    /// Everything it has logged so far (stderr), see [`Served::drain_log`].
    pub log: String,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
}

impl std::ops::Deref for Served {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A directory with the dev certificates, for [`serve_binary`] (which creates the database).
pub fn certs() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    dev_ca::generate(dir.path()).expect("dev certificates");
    dir
}

/// Starts `delivery-api serve` on a free port, on `dir`'s database and certificates.
pub async fn serve_binary(dir: &Path, rust_log: &str, extra: &[&str]) -> Served {
    serve_binary_with(dir, rust_log, extra, |_| {}).await
}

/// Like [`serve_binary`], with the command adjusted by `adjust` before it starts.
pub async fn serve_binary_with(
    dir: &Path,
    rust_log: &str,
    extra: &[&str],
    adjust: impl FnOnce(&mut tokio::process::Command),
) -> Served {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(BINARY);
    adjust(&mut command);
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0", "--no-demo-page"])
        .args(extra)
        .arg("--cert")
        .arg(dir.join(dev_ca::SERVER_CERT))
        .arg("--key")
        .arg(dir.join(dev_ca::SERVER_KEY))
        .env("DATABASE_URL", database_url(dir).await)
        // The start-up line carries the port: keep it whatever the level asked for.
        .env("RUST_LOG", format!("{rust_log},delivery_api::startup=info"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    let port: u16 = loop {
        let line = lines
            .next_line()
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("the server exited before serving:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("serving https://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    };
    Served {
        api: Api::new(([127, 0, 0, 1], port).into(), &dir.join(dev_ca::CA_CERT)),
        child,
        port,
        log,
        lines,
    }
}

impl Served {
    /// Reads the log until a line matches `wanted`, and returns it. Fails if the server exits
    /// first, or if no such line comes within a minute (a bound for a broken build, far above
    /// the milliseconds a working one takes on a loaded machine).
    pub async fn wait_for_log_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line());
            let line = next
                .await
                .unwrap_or_else(|_| panic!("no such line within 60 s; the log:\n{}", self.log))
                .expect("read the log")
                .unwrap_or_else(|| panic!("the server exited; its log:\n{}", self.log));
            self.log.push_str(&line);
            self.log.push('\n');
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Reads the rest of the log (call after the process has exited or been killed).
    pub async fn drain_log(&mut self) -> &str {
        while let Ok(Some(line)) = self.lines.next_line().await {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        &self.log
    }
}

/// `delivery-api ARGS…` in `cwd`, as a test harness would run it: no `DATABASE_URL` from the
/// developer's environment, warnings only, stdout and stderr piped, killed if the test drops it.
pub fn command_in(cwd: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `delivery-api serve --bind 127.0.0.1:0 ARGS…` in `cwd`, and its ready line once it serves.
pub async fn serve_in(cwd: &Path, args: &[&str]) -> (tokio::process::Child, serde_json::Value) {
    use tokio::io::AsyncBufReadExt as _;
    let mut all = vec!["serve", "--bind", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = command_in(cwd, &all).spawn().expect("the binary runs");
    // The first line on stdout is the ready line (logs go to stderr).
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = ready_line(&mut stdout).await;
    (child, ready)
}

/// The first line a started binary writes on stdout: its ready line, one JSON object.
pub async fn ready_line(
    stdout: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let line = stdout
        .next_line()
        .await
        .expect("read stdout")
        .expect("a ready line before exit");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(ready["event"], "ready", "{ready}");
    ready
}
