//! Real PostgreSQL for the tests, started by the tests: a throwaway cluster in a temporary
//! directory (`initdb`, then `postgres` on a free loopback port), run as the `postgres` (or
//! `nobody`) user when the tests run as root, and removed when the test process ends, however it
//! ends: a small reaper shell holds a pipe from this process, and when the pipe closes (exit,
//! panic, `kill -9`) it stops the server and deletes the directory.
//!
//! The suite runs on PostgreSQL when `DELIVERY_API_TEST_ENGINE=postgres` (see `scripts/test`);
//! each app then gets a new database in one shared cluster. Tests that need PostgreSQL whatever
//! the engine (several instances on one database) call [`cluster`] too.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use tempfile::TempDir;

/// The directory of `initdb` and `postgres`: `$PG_BIN`, else Debian's newest
/// /usr/lib/postgresql/N/bin, else whatever `postgres` is on PATH.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("postgres").exists() && p.join("initdb").exists())
    })
}

/// [`bin_dir`], or a failed test. A test that needs PostgreSQL never skips itself: without it,
/// build.rs has it `#[ignore]`d (no `cfg(postgres)`) and scripts/test runs no PostgreSQL pass,
/// so getting here without PostgreSQL is an error to report, not a pass.
pub fn bin() -> PathBuf {
    bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb and postgres found): apt-get install \
             postgresql, or set PG_BIN to its bin directory"
        )
    })
}

/// The shared cluster, started on first use.
pub fn cluster() -> &'static PgCluster {
    static SHARED: LazyLock<PgCluster> = LazyLock::new(|| PgCluster::start(bin()));
    &SHARED
}

pub struct PgCluster {
    dir: TempDir,
    pub port: u16,
    bin: PathBuf,
    server: Mutex<Option<Child>>,
    /// Reached only through its Unix socket, in its own directory: no TCP port at all.
    socket_only: bool,
    /// Its closing (this struct dropped, or this process gone) tells the reaper to clean up.
    _reaper: ChildStdin,
}

impl PgCluster {
    /// A new cluster, on a free TCP port (the shared one).
    pub fn start(bin: PathBuf) -> Self {
        Self::create(bin, false)
    }

    /// A new cluster of its own that listens on a Unix socket in its own directory only. For
    /// tests that stop and restart the server: a TCP port freed by the stop could be taken by
    /// another test's listener (every test binds port 0) before the restart, which then fails.
    /// A socket file in a private directory cannot be taken.
    pub fn start_private(bin: PathBuf) -> Self {
        Self::create(bin, true)
    }

    fn create(bin: PathBuf, socket_only: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("delivery-api-pg-")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let owner = run_as();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the cluster directory");
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&data)
            .current_dir(dir.path());
        as_owner(&mut initdb, owner);
        let out = initdb.output().expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let reaper = reaper(dir.path());
        let mut cluster = Self {
            dir,
            port: 0,
            bin,
            server: Mutex::new(None),
            socket_only,
            _reaper: reaper,
        };
        // A socket-only cluster's port only names its socket file (`.s.PGSQL.5432`).
        cluster.port = cluster.launch(socket_only.then_some(5432));
        cluster
    }

    /// Starts `postgres` (on `port`, or a free one) and waits for "ready to accept connections".
    fn launch(&self, port: Option<u16>) -> u16 {
        for _attempt in 0..5 {
            let chosen = port.unwrap_or_else(free_port);
            let mut cmd = Command::new(self.bin.join("postgres"));
            cmd.arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-p", &chosen.to_string()])
                .arg("-k")
                .arg(self.dir.path())
                .args([
                    "-c",
                    if self.socket_only {
                        "listen_addresses="
                    } else {
                        "listen_addresses=127.0.0.1"
                    },
                    // Throwaway data: the server's own crash safety is not under test here (the
                    // app's is: an acknowledged write is committed, whatever happens to the app).
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "log_min_messages=warning",
                ])
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            as_owner(&mut cmd, run_as());
            let mut child = cmd.spawn().expect("postgres starts");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = BufReader::new(stderr).lines();
            let mut log = String::new();
            let ready = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        log.push_str(&line);
                        log.push('\n');
                        if line.contains("ready to accept connections") {
                            break true;
                        }
                    }
                    _ => break false,
                }
            };
            if ready {
                // Keep reading its log, so that it never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                *self.server.lock().expect("lock") = Some(child);
                return chosen;
            }
            let _ = child.wait();
            if port_in_use(&log) && port.is_none() {
                continue;
            }
            panic!("postgres did not start:\n{log}");
        }
        panic!("postgres found no free port in 5 attempts");
    }

    /// Stops the server (fast shutdown: sessions are cut) and waits for it to exit.
    pub fn stop(&self) {
        if let Some(mut child) = self.server.lock().expect("lock").take() {
            // SIGINT: PostgreSQL's "fast" shutdown.
            unsafe_signal(child.id(), libc::SIGINT);
            child.wait().expect("postgres exits");
        }
    }

    /// Starts it again, on the same port and data.
    pub fn restart(&self) {
        self.launch(Some(self.port));
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`, or through the socket for a private cluster.
    pub fn url(&self, database: &str) -> String {
        if self.socket_only {
            let dir = self.dir.path().display();
            return format!(
                "postgres://postgres@localhost/{database}?host={dir}&port={}",
                self.port
            );
        }
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database in this cluster; its URL.
    pub async fn new_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = sqlx::PgPool::connect(&self.url("postgres"))
            .await
            .expect("connect to the cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await;
        self.url(&name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// When running as root, PostgreSQL must run as someone else: the `postgres` user Debian's
/// package creates, else `nobody`.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: getuid and getpwnam have no preconditions; the passwd entry is read at once.
    unsafe {
        if libc::getuid() != 0 {
            return None;
        }
        for name in [c"postgres", c"nobody"] {
            let pw = libc::getpwnam(name.as_ptr());
            if !pw.is_null() {
                return Some(((*pw).pw_uid, (*pw).pw_gid));
            }
        }
    }
    panic!(
        "running as root, and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as"
    )
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
}

fn unsafe_signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid of our own child.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn port_in_use(log: &str) -> bool {
    log.contains("could not bind") || log.contains("Address already in use")
}

/// A shell that waits for its standard input to close, then stops the cluster's server (its pid
/// is the first line of postmaster.pid) and removes the directory.
#[expect(
    clippy::zombie_processes,
    reason = "it outlives this process on purpose; it exits when our end of its pipe closes"
)]
fn reaper(dir: &Path) -> ChildStdin {
    // Immune to the terminal's Ctrl-C (SIGINT to the whole process group) and to SIGTERM/SIGHUP:
    // it must outlive the test process to clean up after it.
    let script = r#"
        trap '' INT TERM HUP
        read -r _
        pid=$(head -n 1 "$0/data/postmaster.pid" 2>/dev/null)
        if [ -n "$pid" ]; then
            kill -INT "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
        rm -rf "$0"
    "#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the cluster's reaper starts");
    let mut stdin = child.stdin.take().expect("stdin");
    // Nothing is ever written: only the pipe's closing matters. (A flush keeps clippy honest.)
    stdin.flush().expect("pipe");
    stdin
}
