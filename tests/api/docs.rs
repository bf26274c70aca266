//! The README and docs/ cannot drift from the code. Every Markdown page of the repository is read
//! here, and:
//!
//! - every relative link, and every source path written as code, points to something that exists;
//! - every quoted piece of source (`<!-- excerpt: FILE#NAME -->` before a fenced block) equals the
//!   region between `ANCHOR: NAME` and `ANCHOR_END: NAME` in FILE (`<!-- excerpt: FILE -->`: the
//!   whole file);
//! - every flags reference (`<!-- generated: delivery-api ARGS --help -->`) is what clap renders
//!   today, and every default a table states is clap's;
//! - every `sh` / `console` block is run (`<!-- check: … -->`) or says why not (`<!-- not run: … -->`),
//!   and what a checked block shows is what its commands print.
//!
//! `UPDATE_DOCS=1 cargo test --test api docs::` rewrites excerpts and generated blocks from the
//! code. docs/testing.md describes the markers and how commands are run and compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BINARY: &str = env!("CARGO_BIN_EXE_delivery-api");
/// How the block's working directory is shown in the pages.
const SHOWN_DIR: &str = "/home/you/delivery-api";
/// Directories whose Markdown is not ours to check.
const SKIPPED_DIRS: [&str; 3] = ["target", "vendor", "node_modules"];
/// Fence languages that present shell commands.
const SHELL: [&str; 5] = ["sh", "bash", "shell", "console", "zsh"];
/// Response headers whose value changes from run to run: only their presence is compared.
const VARYING_HEADERS: [&str; 3] = ["date", "etag", "x-request-id"];
/// How long a server may take to start, and a command to finish (a debug build, a busy machine).
const PATIENCE: Duration = Duration::from_secs(60);

/// The README is a front door (issue 20): what this is, the two commands, the lesson; the rest
/// has a page in docs/.
#[test]
fn the_readme_stays_a_front_door_of_at_most_250_lines() {
    let lines = read_page(Path::new("README.md")).text.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: move detail into a docs/ page and link it"
    );
}

// ---------------------------------------------------------------------------------------------
// Links and paths

#[test]
fn every_relative_link_in_the_markdown_points_to_something_that_exists() {
    let mut broken = Vec::new();
    for page in pages() {
        for (line, target) in page.links() {
            if is_external(&target) {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                page.path.clone()
            } else {
                page.dir().join(path)
            };
            if !Path::new(ROOT).join(&resolved).exists() {
                broken.push(format!("{}:{line}: ({target}): no such file", page.name()));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            if resolved.extension().is_some_and(|e| e == "md") {
                let anchors = read_page(&resolved).anchors();
                if !anchors.iter().any(|a| a == fragment) {
                    broken.push(format!(
                        "{}:{line}: ({target}): {} has no heading #{fragment} (it has: {})",
                        page.name(),
                        resolved.display(),
                        anchors.join(", ")
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_source_path_the_pages_write_as_code_exists() {
    let mut missing = Vec::new();
    for page in pages() {
        for (line, path) in page.code_paths() {
            if !Path::new(ROOT).join(&path).exists() {
                missing.push(format!("{}:{line}: `{path}` does not exist", page.name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths named in the pages that do not exist (moved? say where it went):\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Excerpts and generated blocks

#[test]
fn every_quoted_piece_of_source_equals_its_anchored_region() {
    let mut found = 0;
    let stale = regenerate(|marker| {
        let spec = marker.strip_prefix("excerpt:")?.trim();
        found += 1;
        Some(excerpt(spec))
    });
    assert!(
        found > 0,
        "no `<!-- excerpt: … -->` marker found in any page"
    );
    assert!(
        stale.is_empty(),
        "quoted source that differs from the code:\n{}\nRun `UPDATE_DOCS=1 cargo test --test api docs::` \
         to copy the code into the pages (and check that the prose around them still holds).",
        stale.join("\n")
    );
}

#[test]
fn the_flags_reference_is_what_clap_renders_today() {
    let mut found = Vec::new();
    let stale = regenerate(|marker| {
        let args = marker
            .strip_prefix("generated: delivery-api")?
            .trim()
            .strip_suffix("--help")
            .unwrap_or_else(|| panic!("a generated block must say `--help`: {marker}"));
        let path: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        found.push(path.clone());
        Some(Ok(help(&path)))
    });
    assert!(
        found.iter().any(|p| p == &["serve"]),
        "no page holds `<!-- generated: delivery-api serve --help -->`"
    );
    assert!(
        stale.is_empty(),
        "flags references that differ from what clap renders:\n{}\nRun `UPDATE_DOCS=1 cargo test \
         --test api docs::` to rewrite them (and check that the prose around them still holds).",
        stale.join("\n")
    );
}

/// The rendering above is what the binary itself prints on a machine without the variables.
#[tokio::test]
async fn the_rendered_help_is_what_the_binary_prints() {
    let mut paths = Vec::new();
    for page in pages() {
        for block in page.blocks() {
            if let Some(args) = block
                .marker
                .as_deref()
                .and_then(|m| m.strip_prefix("generated: delivery-api"))
                .and_then(|m| m.trim().strip_suffix("--help"))
            {
                paths.push(
                    args.split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    assert!(!paths.is_empty(), "no generated block found");
    for path in paths {
        let mut command = tokio::process::Command::new(BINARY);
        command.args(&path).arg("--help");
        clean_environment(&mut command);
        let out = command.output().await.expect("the binary runs");
        assert!(out.status.success(), "{path:?} --help: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            help(&path),
            "{path:?}"
        );
    }
}

#[test]
fn every_default_a_table_states_is_the_one_the_code_has() {
    let defaults = serve_defaults();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for page in pages() {
        for row in page.table_rows_with("flag", "default") {
            let flags: Vec<&str> = code_spans(&row.flag)
                .into_iter()
                .filter(|s| s.starts_with("--"))
                .collect();
            let flag = match flags.as_slice() {
                [] => continue, // a limit without a flag (fixed, or actix-web's)
                [flag] => *flag,
                _ => {
                    wrong.push(format!(
                        "{}:{}: one flag per row, so that its default can be checked: {}",
                        page.name(),
                        row.line,
                        row.flag
                    ));
                    continue;
                }
            };
            let Some(stated) = leading_number(&row.default) else {
                wrong.push(format!(
                    "{}:{}: {flag}: no number at the start of the default {:?}",
                    page.name(),
                    row.line,
                    row.default
                ));
                continue;
            };
            checked += 1;
            match defaults.get(flag.trim_start_matches('-')) {
                Some(Some(code)) if (code - stated).abs() < 1e-9 => {}
                found => wrong.push(format!(
                    "{}:{}: {flag}: the page says {stated} ({:?}), the code {}",
                    page.name(),
                    row.line,
                    row.default,
                    match found {
                        None => "has no such flag".to_owned(),
                        Some(None) => "has no numeric default".to_owned(),
                        Some(Some(code)) => code.to_string(),
                    }
                )),
            }
        }
    }
    assert!(
        checked > 0,
        "no table with a flag and a default column found"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Commands

#[test]
fn every_command_block_is_checked_or_says_why_not() {
    let mut unmarked = Vec::new();
    for page in pages() {
        for block in page.blocks() {
            if !SHELL.contains(&block.lang.as_str()) {
                continue;
            }
            match block.marker.as_deref() {
                Some(m) if m.starts_with("check:") => {}
                Some(m) if m.starts_with("not run:") && m["not run:".len()..].trim().len() > 10 => {
                }
                _ => unmarked.push(format!("{}:{}", page.name(), block.line)),
            }
        }
    }
    assert!(
        unmarked.is_empty(),
        "command blocks with neither `<!-- check: … -->` (tests/api/docs.rs runs them) nor \
         `<!-- not run: the reason -->` right before them:\n{}",
        unmarked.join("\n")
    );
}

#[tokio::test]
async fn the_readmes_commands_print_what_the_readme_shows() {
    run_checked_blocks(|page| page.path == Path::new("README.md")).await;
}

#[tokio::test]
async fn the_docs_commands_print_what_the_docs_show() {
    run_checked_blocks(|page| page.path != Path::new("README.md")).await;
}

async fn run_checked_blocks(pick: impl Fn(&Page) -> bool) {
    // The commands run the binary with a clean environment, so on the default engine (SQLite)
    // whichever engine the suite runs on: the pages show that one.
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in pages().into_iter().filter(|p| pick(p)) {
        for block in page.blocks() {
            if !block
                .marker
                .as_deref()
                .is_some_and(|m| m.starts_with("check:"))
            {
                continue;
            }
            ran += 1;
            let at = format!("{}:{}", page.name(), block.line);
            if let Err(why) = run_block(&block).await {
                failures.push(format!("== {at}\n{why}"));
            }
        }
    }
    assert!(ran > 0, "no checked block found");
    assert!(
        failures.is_empty(),
        "{} of {ran} checked blocks do not print what the page shows:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One command of a `console` block: its text (continuation lines kept) and the lines shown under it.
struct Shown {
    command: String,
    output: Vec<String>,
}

/// The server a block runs against: the real binary, on free ports, in the block's directory.
struct Server {
    child: tokio::process::Child,
    log: Arc<Mutex<String>>,
    /// The ports the page shows and the ones the server got.
    ports: Vec<Port>,
    /// Lines the page shows under the server's command: its log must have them by the end.
    expected_log: Vec<String>,
}

struct Port {
    shown: u16,
    real: u16,
    /// Whether commands call it. The demo page's port is not: `Origin: http://localhost:4200`
    /// names the allowed origin, wherever the page is served.
    called: bool,
}

/// Where a block runs: an empty directory, shown as [`SHOWN_DIR`], and perhaps a server.
struct Scene {
    dir: tempfile::TempDir,
    /// A `.curlrc` that turns off the progress meter curl shows when its output is not a
    /// terminal (at a terminal, `curl -i` shows none), and keeps the developer's own out.
    curl_home: tempfile::TempDir,
    real_dir: String,
    server: Option<Server>,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let real_dir = dir
            .path()
            .canonicalize()
            .expect("canonical")
            .display()
            .to_string();
        let curl_home = tempfile::tempdir().expect("tempdir");
        std::fs::write(curl_home.path().join(".curlrc"), "no-progress-meter\n").expect("curlrc");
        // The HAR fixtures docs/doctor.md runs the doctor on, at the same relative path.
        let har = dir.path().join("tests/api/har");
        std::fs::create_dir_all(&har).expect("mkdir");
        for file in std::fs::read_dir(Path::new(ROOT).join("tests/api/har")).expect("fixtures") {
            let file = file.expect("entry").path();
            std::fs::copy(&file, har.join(file.file_name().expect("name"))).expect("copy");
        }
        Scene {
            dir,
            curl_home,
            real_dir,
            server: None,
        }
    }

    /// The page's ports and addresses replaced by the server's, in a command.
    fn to_real(&self, text: &str) -> String {
        let mut text = as_installed(text);
        for port in self
            .server
            .iter()
            .flat_map(|s| &s.ports)
            .filter(|p| p.called)
        {
            for host in ["localhost", "127.0.0.1"] {
                let (shown, real) = (port.shown, port.real);
                text = text.replace(&format!("{host}:{shown}"), &format!("{host}:{real}"));
            }
        }
        text
    }

    /// The server's ports and directory replaced by the page's, in what was printed.
    fn to_shown(&self, text: &str) -> String {
        let mut text = text.replace(&self.real_dir, SHOWN_DIR);
        for port in self.server.iter().flat_map(|s| &s.ports) {
            text = text.replace(&format!(":{}", port.real), &format!(":{}", port.shown));
        }
        // The demo page's origin is always allowed; on its default port it is the default
        // allowed origin too, and listed once. Here it has a port of its own, and so is listed
        // beside it: shown as 4200, it is the same origin, once.
        let origin = "http://localhost:4200";
        text.replace(&format!("{origin}, {origin}"), origin)
    }

    /// Waits (a while) for the server's log to hold `wanted`, as the pages show log lines.
    async fn wait_for_log(&self, wanted: &str) -> Result<(), String> {
        let server = self.server.as_ref().expect("a server");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let log = server.log.lock().expect("log").clone();
            let shown: Vec<String> = log
                .lines()
                .map(|line| self.to_shown(&as_shown_log_line(line)))
                .collect();
            if shown.iter().any(|line| matches(wanted, line)) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "the server's log has no line like\n  {wanted}\nits log:\n{}",
                    shown.join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run(&self, command: &str) -> Result<std::process::Output, String> {
        let mut child = tokio::process::Command::new("sh");
        child
            .arg("-c")
            .arg(format!("exec 2>&1\n{}", self.to_real(command)))
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        clean_environment(&mut child);
        child.env("CURL_HOME", self.curl_home.path());
        // As if typed at the `read` prompt the page shows before the commands that use it.
        child.env("PASSWORD", "bobs-own-password");
        match tokio::time::timeout(PATIENCE, child.output()).await {
            Ok(out) => out.map_err(|e| format!("cannot run sh: {e}")),
            Err(_) => Err(format!("still running after {PATIENCE:?}: {command}")),
        }
    }
}

async fn run_block(block: &Block) -> Result<(), String> {
    let text = block.body.join("\n");
    for tool in ["curl", "jq"] {
        if mentions_command(&text, tool) && !on_path(tool) {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                return Err(format!(
                    "needs {tool}, which is not installed (.ci/run installs it)"
                ));
            }
            eprintln!("SKIPPED a block that needs {tool} (not installed):\n{text}");
            return Ok(());
        }
    }
    let mut scene = Scene::new();
    if block.lang != "console" {
        // A script: run as it is, and it must succeed.
        if calls_the_api(&text) {
            scene.server = Some(start_server(&scene, &[]).await?);
        }
        let out = scene.run(&text).await?;
        return match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "the script failed ({}):\n{}",
                out.status,
                scene.to_shown(&String::from_utf8_lossy(&out.stdout))
            )),
        };
    }
    let mut shown = console_commands(&block.body)?.into_iter().peekable();
    if let Some(first) = shown.peek()
        && let Some(flags) = server_flags(&first.command)
    {
        let mut server = start_server(&scene, &flags).await?;
        server.expected_log = first.output.clone();
        scene.server = Some(server);
        shown.next();
    } else if calls_the_api(&text) {
        scene.server = Some(start_server(&scene, &[]).await?);
    }
    let mut errors = Vec::new();
    for step in shown {
        if server_flags(&step.command).is_some() {
            return Err(format!(
                "a server can only be started by the block's first command: {}",
                step.command
            ));
        }
        let out = scene.run(&step.command).await?;
        let printed = scene.to_shown(&String::from_utf8_lossy(&out.stdout));
        let verdict = if step.output.is_empty() {
            match out.status.success() {
                true => Ok(()),
                false => Err(format!(
                    "it failed ({}) and printed:\n{printed}",
                    out.status
                )),
            }
        } else {
            compare(&step, &printed)
        };
        if let Err(why) = verdict {
            errors.push(format!("$ {}\n{why}", step.command));
        }
    }
    let expected_log = scene
        .server
        .as_ref()
        .map(|s| s.expected_log.clone())
        .unwrap_or_default();
    for wanted in expected_log {
        if let Err(why) = scene.wait_for_log(&wanted).await {
            errors.push(why);
        }
    }
    if let Some(server) = &mut scene.server {
        let _ = server.child.start_kill();
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("\n\n")),
    }
}

/// A block's `$ ` commands and what is shown under each.
fn console_commands(body: &[String]) -> Result<Vec<Shown>, String> {
    let mut commands: Vec<Shown> = Vec::new();
    let mut continued = false;
    for line in body {
        if continued {
            let last = commands.last_mut().expect("a command");
            last.command.push('\n');
            last.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            commands.push(Shown {
                command: command.to_owned(),
                output: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else {
            commands
                .last_mut()
                .ok_or_else(|| format!("output before any `$ ` command: {line}"))?
                .output
                .push(line.clone());
        }
    }
    for shown in &mut commands {
        while shown.output.last().is_some_and(|l| l.is_empty()) {
            shown.output.pop();
        }
    }
    Ok(commands)
}

/// `cargo run --release -- ARGS` is `delivery-api ARGS` (the binary the suite built, on PATH).
fn as_installed(text: &str) -> String {
    text.replace("cargo run --release -- ", "delivery-api ")
        .replace("cargo run --release", "delivery-api")
}

/// The flags of a command that starts the server (`delivery-api [serve] FLAGS [&]`), or `None`.
fn server_flags(command: &str) -> Option<Vec<String>> {
    let command = as_installed(command);
    let command = command.split(" #").next().unwrap_or_default().trim();
    let command = command.strip_suffix('&').unwrap_or(command).trim();
    let mut words = command.split_whitespace().map(str::to_owned);
    if words.next().as_deref() != Some("delivery-api") {
        return None;
    }
    let rest: Vec<String> = words.collect();
    match rest.first().map(String::as_str) {
        None => Some(rest),
        Some("serve") => Some(rest[1..].to_vec()),
        Some(flag) if flag.starts_with('-') && !flag.starts_with("--help") => Some(rest),
        Some(_) => None,
    }
}

fn calls_the_api(text: &str) -> bool {
    text.contains("localhost:8443") || text.contains("127.0.0.1:8443")
}

fn mentions_command(text: &str, tool: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .any(|word| word == tool)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// No `DELIVERY_API_*` or `DATABASE_URL` from the developer's shell, no `RUST_LOG`; the binary
/// first on PATH.
fn clean_environment(command: &mut tokio::process::Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("DELIVERY_API_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            command.env_remove(name.as_ref());
        }
    }
    let bin_dir = Path::new(BINARY).parent().expect("the binary's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .expect("PATH");
    command.env("PATH", path);
}

/// Serves the binary with the page's flags, its listeners moved to free ports.
async fn start_server(scene: &Scene, flags: &[String]) -> Result<Server, String> {
    let mut flags = flags.to_vec();
    let mut shown_ports = BTreeMap::new();
    for (flag, default) in [
        ("--bind", Some(8443)),
        ("--demo-page-bind", Some(4200)),
        ("--metrics-bind", None),
        ("--test-support-bind", None),
    ] {
        let port = match flags.iter().position(|f| f == flag) {
            Some(i) => {
                let value = flags
                    .get_mut(i + 1)
                    .ok_or_else(|| format!("{flag} without a value"))?;
                let (host, port) = value
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{flag} {value}: no port"))?;
                let port: u16 = port.parse().map_err(|_| format!("{flag} {value}: port"))?;
                *value = format!("{host}:0");
                Some(port)
            }
            None => {
                if default.is_some()
                    && !(flag == "--demo-page-bind" && flags.iter().any(|f| f == "--no-demo-page"))
                {
                    flags.extend([flag.to_owned(), "127.0.0.1:0".to_owned()]);
                }
                default
            }
        };
        if let Some(port) = port {
            shown_ports.insert(flag, port);
        }
    }
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(&flags)
        .current_dir(scene.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    clean_environment(&mut command);
    command.env("RUST_LOG", "info");
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the binary: {e}"))?;
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let sink = log.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let mut log = sink.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = match tokio::time::timeout(PATIENCE, stdout.next_line()).await {
        Ok(Ok(Some(line))) => line,
        _ => {
            // Its whole log: once it is stopped, the reader ends at the end of its stderr.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(PATIENCE, reader).await;
            return Err(format!(
                "delivery-api {} did not print its ready line; its log:\n{}",
                flags.join(" "),
                log.lock().expect("log")
            ));
        }
    };
    let ready: serde_json::Value =
        serde_json::from_str(&ready).map_err(|e| format!("ready line {ready:?}: {e}"))?;
    let port_of = |field: &str| {
        ready[field]
            .as_str()
            .and_then(|url| url.rsplit(':').next())
            .and_then(|tail| tail.split('/').next())
            .and_then(|port| port.parse::<u16>().ok())
    };
    let mut ports = Vec::new();
    for (flag, field) in [
        ("--bind", "api"),
        ("--demo-page-bind", "demo_page"),
        ("--metrics-bind", "metrics"),
        ("--test-support-bind", "test_support"),
    ] {
        if let (Some(shown), Some(real)) = (shown_ports.get(flag), port_of(field)) {
            ports.push(Port {
                shown: *shown,
                real,
                called: field != "demo_page",
            });
        }
    }
    Ok(Server {
        child,
        log,
        ports,
        expected_log: Vec::new(),
    })
}

/// A log line as the pages show it: without its timestamp and request span.
fn as_shown_log_line(line: &str) -> String {
    for level in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
        if let Some(at) = line.find(&format!(" {level} "))
            && let Some(target) = line[at..].find("delivery_api")
        {
            return format!("{level} {}", &line[at + target..]);
        }
    }
    line.to_owned()
}

fn compare(step: &Shown, printed: &str) -> Result<(), String> {
    let printed: Vec<String> = printed
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect();
    let command = as_installed(&step.command);
    let mismatch = if step.output[0].starts_with("HTTP/") {
        compare_http(&step.output, &printed)
    } else if command.starts_with("delivery-api ") {
        compare_in_order(&step.output, &printed)
    } else {
        compare_in_any_order(&step.output, &printed)
    };
    mismatch.map_err(|why| {
        format!(
            "{why}\n-- the page shows:\n{}\n-- it printed:\n{}",
            step.output.join("\n"),
            printed.join("\n")
        )
    })
}

/// `curl -i`: the status line, the headers (names both ways; values but the varying ones, comma
/// lists in any order), the body.
fn compare_http(shown: &[String], printed: &[String]) -> Result<(), String> {
    let split = |lines: &[String]| {
        let head_end = lines
            .iter()
            .position(String::is_empty)
            .unwrap_or(lines.len());
        let mut headers = BTreeMap::new();
        for line in &lines[1..head_end] {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        let body = lines.get(head_end + 1..).unwrap_or_default().join("\n");
        (lines[0].clone(), headers, body)
    };
    if printed.is_empty() {
        return Err("it printed nothing".to_owned());
    }
    let (shown_status, shown_headers, shown_body) = split(shown);
    let (status, headers, body) = split(printed);
    let mut problems = Vec::new();
    if shown_status != status {
        problems.push(format!(
            "status line: the page shows {shown_status:?}, got {status:?}"
        ));
    }
    for (name, value) in &shown_headers {
        match headers.get(name) {
            None => problems.push(format!("header {name}: shown, but not sent")),
            Some(_) if VARYING_HEADERS.contains(&name.as_str()) => {}
            Some(got) if as_list(got) != as_list(value) => problems.push(format!(
                "header {name}: the page shows {value:?}, got {got:?}"
            )),
            Some(_) => {}
        }
    }
    for name in headers.keys().filter(|n| !shown_headers.contains_key(*n)) {
        problems.push(format!(
            "header {name}: sent, but the page does not show it"
        ));
    }
    if !matches(&shown_body, &body) {
        problems.push("body: differs".to_owned());
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n")),
    }
}

/// A header value as a set of its comma-separated items (actix's order is a hash map's).
fn as_list(value: &str) -> Vec<String> {
    let mut items: Vec<String> = value.split(',').map(|i| i.trim().to_owned()).collect();
    items.sort();
    items
}

/// The doctor's report: line by line; a line `…` stands for any lines; a `< name: a, b` header
/// line's items in any order.
fn compare_in_order(shown: &[String], printed: &[String]) -> Result<(), String> {
    let normal = |line: &str| match line.trim_start().strip_prefix("< ") {
        Some(header) => match header.split_once(": ") {
            Some((name, value)) => format!("< {name}: {}", as_list(value).join(", ")),
            None => line.trim_start().to_owned(),
        },
        None => line.to_owned(),
    };
    let shown = headers_sorted(shown.iter().map(|l| normal(l)).collect());
    let printed = headers_sorted(printed.iter().map(|l| normal(l)).collect());
    if lines_match(&shown, &printed) {
        return Ok(());
    }
    let mut differences: Vec<String> = shown
        .iter()
        .filter(|l| l.trim() != "…" && !printed.iter().any(|p| matches(l, p)))
        .map(|l| format!("shown, not printed: {l}"))
        .collect();
    differences.extend(
        printed
            .iter()
            .filter(|p| !shown.iter().any(|l| matches(l, p)))
            .filter(|_| !shown.iter().any(|l| l.trim() == "…"))
            .map(|p| format!("printed, not shown: {p}")),
    );
    if differences.is_empty() {
        differences.push("the same lines, in another order".to_owned());
    }
    Err(differences.join("\n"))
}

/// Each run of `< name: value` lines sorted: the response's headers come in hash-map order.
fn headers_sorted(mut lines: Vec<String>) -> Vec<String> {
    let is_header = |l: &String| l.starts_with("< ") && !l.starts_with("< status");
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| is_header(l)).count();
        lines[i..i + run].sort();
        i += run.max(1);
    }
    lines
}

fn lines_match(shown: &[String], printed: &[String]) -> bool {
    match shown.split_first() {
        None => printed.is_empty(),
        Some((first, rest)) if first.trim() == "…" => {
            (0..=printed.len()).any(|skip| lines_match(rest, &printed[skip..]))
        }
        Some((first, rest)) => printed
            .split_first()
            .is_some_and(|(line, more)| matches(first, line) && lines_match(rest, more)),
    }
}

/// Output of other commands (curl without `-i`, a `grep` of metrics): the same lines, in any order.
fn compare_in_any_order(shown: &[String], printed: &[String]) -> Result<(), String> {
    let mut left: Vec<&String> = printed.iter().collect();
    let mut missing = Vec::new();
    for line in shown {
        match left.iter().position(|p| matches(line, p)) {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push(line.clone()),
        }
    }
    let mut problems: Vec<String> = missing
        .iter()
        .map(|l| format!("shown, not printed: {l}"))
        .collect();
    problems.extend(left.iter().map(|l| format!("printed, not shown: {l}")));
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n")),
    }
}

/// `shown` equals `text`, where each `…` in `shown` stands for any text.
fn matches(shown: &str, text: &str) -> bool {
    let mut pieces = shown.split('…');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

// ---------------------------------------------------------------------------------------------
// clap

/// What `delivery-api PATH --help` prints where no variable it reads is set. clap reads the
/// variables when the command is built, so their values are hidden for the rendering, and the
/// empty `=` the binary prints for an unset one is put back.
fn help(path: &[String]) -> String {
    use clap::CommandFactory as _;
    let mut command = delivery_api::config::Cli::command();
    command.build();
    let mut sub = &mut command;
    for name in path {
        sub = sub
            .find_subcommand_mut(name)
            .unwrap_or_else(|| panic!("no subcommand `{name}` in delivery-api {path:?}"));
    }
    let shown_empty: Vec<String> = sub
        .get_arguments()
        .filter(|arg| !arg.is_hide_env_values_set())
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    let long = long_help_exists(sub);
    let mut sub = sub.clone().mut_args(|arg| arg.hide_env_values(true));
    let mut text = match long {
        true => sub.render_long_help(),
        false => sub.render_help(),
    }
    .to_string();
    for name in shown_empty {
        text = text.replace(&format!("[env: {name}]"), &format!("[env: {name}=]"));
    }
    text
}

/// Whether `--help` prints the long form: clap's own rule (`Command::long_help_exists_`, not
/// public), restated: some text of the command or of a shown argument has a long form.
fn long_help_exists(command: &clap::Command) -> bool {
    let long = |arg: &clap::Arg| {
        !arg.is_hide_set()
            && (arg.get_long_help().is_some()
                || arg.is_hide_long_help_set()
                || arg.is_hide_short_help_set()
                || (!arg.is_hide_possible_values_set()
                    && arg
                        .get_possible_values()
                        .iter()
                        .any(|v| !v.is_hide_set() && v.get_help().is_some())))
    };
    command.get_long_about().is_some()
        || command.get_before_long_help().is_some()
        || command.get_after_long_help().is_some()
        || command.get_arguments().any(long)
}

/// `serve`'s numeric defaults by long flag name (`None`: no default, or not a number).
fn serve_defaults() -> BTreeMap<String, Option<f64>> {
    use clap::CommandFactory as _;
    let mut command = delivery_api::config::Cli::command();
    command.build();
    let serve = command.find_subcommand("serve").expect("serve");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?.to_owned();
            let default = arg
                .get_default_values()
                .first()
                .and_then(|v| v.to_str())
                .and_then(|v| v.replace('_', "").parse::<f64>().ok());
            Some((long, default))
        })
        .collect()
}

/// `10 per minute` → 10, `64 KiB` → 65536, `10,000 entries` → 10000.
fn leading_number(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    let digits: String = cell
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .collect();
    if digits.is_empty() {
        return None;
    }
    let number: f64 = digits.replace(',', "").parse().ok()?;
    let unit = cell[digits.len()..].trim_start();
    Some(if unit.starts_with("KiB") {
        number * 1024.0
    } else if unit.starts_with("MiB") {
        number * 1024.0 * 1024.0
    } else {
        number
    })
}

// ---------------------------------------------------------------------------------------------
// Source excerpts

/// The region `FILE#NAME` names, common indentation removed; or, for `FILE` alone, the whole file
/// (an example a reader copies whole, with no anchor comments in it).
fn excerpt(spec: &str) -> Result<String, String> {
    let (file, name) = spec.split_once('#').unwrap_or((spec, ""));
    let text = std::fs::read_to_string(Path::new(ROOT).join(file))
        .map_err(|e| format!("`{spec}`: cannot read {file}: {e}"))?;
    if name.is_empty() {
        return Ok(text
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let anchor = |line: &str, keyword: &str| {
        line.split_once(keyword)
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|n| n == name)
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| anchor(l, "ANCHOR:"))
        .ok_or_else(|| format!("`{spec}`: {file} has no `ANCHOR: {name}` line"))?;
    let end = lines[start..]
        .iter()
        .position(|l| anchor(l, "ANCHOR_END:"))
        .map(|i| start + i)
        .ok_or_else(|| format!("`{spec}`: {file} has no `ANCHOR_END: {name}` after its ANCHOR"))?;
    let region: Vec<&str> = lines[start + 1..end]
        .iter()
        .filter(|l| !l.contains("ANCHOR:") && !l.contains("ANCHOR_END:"))
        .copied()
        .collect();
    Ok(dedent(&region).join("\n"))
}

fn dedent(lines: &[&str]) -> Vec<String> {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or_default().trim_end().to_owned())
        .collect()
}

/// Pages are rewritten one at a time (two tests may update the same page).
static REWRITING: Mutex<()> = Mutex::new(());

/// For each block whose marker `expected` recognises, the block must hold what it returns;
/// with `UPDATE_DOCS=1` the page is rewritten instead. Returns the stale blocks.
fn regenerate(mut expected: impl FnMut(&str) -> Option<Result<String, String>>) -> Vec<String> {
    let update = std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1");
    let _one_at_a_time = REWRITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut stale = Vec::new();
    for page in pages() {
        let mut lines: Vec<String> = page.text.lines().map(str::to_owned).collect();
        let mut changed = false;
        // Bottom up, so that a rewritten block does not move the ones still to do.
        for block in page.blocks().into_iter().rev() {
            let Some(marker) = block.marker.as_deref() else {
                continue;
            };
            let Some(want) = expected(marker) else {
                continue;
            };
            let at = format!("{}:{}", page.name(), block.line);
            let want = match want {
                Ok(want) => want,
                Err(why) => {
                    stale.push(format!("{at}: {why}"));
                    continue;
                }
            };
            if marker.starts_with("generated:")
                && lines.get(block.close + 1).map(|l| l.trim()) != Some("<!-- end generated -->")
            {
                stale.push(format!(
                    "{at}: no `<!-- end generated -->` right after the block"
                ));
            }
            let want: Vec<String> = want
                .trim_end()
                .lines()
                .map(|l| l.trim_end().to_owned())
                .collect();
            let have: Vec<&str> = block.body.iter().map(String::as_str).collect();
            if dedent(&have) == want {
                continue;
            }
            if update {
                let indent = " ".repeat(block.indent);
                let new = want.iter().map(|l| match l.is_empty() {
                    true => String::new(),
                    false => format!("{indent}{l}"),
                });
                lines.splice(block.open + 1..block.close, new);
                changed = true;
            } else {
                let have = dedent(&have);
                let first = (0..have.len().max(want.len()))
                    .find(|&i| have.get(i) != want.get(i))
                    .unwrap_or(0);
                let line = |lines: &[String]| lines.get(first).cloned().unwrap_or_default();
                stale.push(format!(
                    "{at} ({marker}): line {} of the block differs\n  page: {}\n  code: {}",
                    first + 1,
                    line(&have),
                    line(&want)
                ));
            }
        }
        if changed {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(Path::new(ROOT).join(&page.path), text).expect("rewrite the page");
            eprintln!("UPDATE_DOCS: rewrote {}", page.name());
        }
    }
    stale
}

// ---------------------------------------------------------------------------------------------
// Markdown, as much as these checks need

struct Page {
    /// Relative to the repository root.
    path: PathBuf,
    text: String,
}

struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// 0-based lines of the fences.
    open: usize,
    close: usize,
    indent: usize,
    lang: String,
    /// The lines between the fences, the fence's indentation removed.
    body: Vec<String>,
    /// The text of an HTML comment on the line before the fence (blank lines allowed between).
    marker: Option<String>,
}

struct TableRow {
    line: usize,
    flag: String,
    default: String,
}

/// Every Markdown file of the repository but those in [`SKIPPED_DIRS`] and hidden directories.
fn pages() -> Vec<Page> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_str()) {
                    walk(&path, out);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(Path::new(ROOT), &mut paths);
    paths
        .into_iter()
        .map(|p| read_page(p.strip_prefix(ROOT).expect("under the root")))
        .collect()
}

fn read_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Page {
        path: path.to_path_buf(),
        text,
    }
}

fn is_external(target: &str) -> bool {
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| target.starts_with(scheme))
}

impl Page {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Each line's text with fenced blocks blanked out, and inline code removed.
    fn prose(&self) -> Vec<(usize, String)> {
        let mut in_fence = false;
        let mut out = Vec::new();
        for (i, line) in self.text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if !in_fence {
                out.push((i + 1, line.to_owned()));
            }
        }
        out
    }

    /// `[text](target)`, `![alt](target)` and `[label]: target`, with their line numbers.
    fn links(&self) -> Vec<(usize, String)> {
        let mut links = Vec::new();
        for (line, text) in self.prose() {
            let text = without_code_spans(&text);
            if let Some(rest) = text.trim_start().strip_prefix('[')
                && let Some((_, target)) = rest.split_once("]: ")
            {
                links.push((
                    line,
                    target.split_whitespace().next().unwrap_or("").to_owned(),
                ));
            }
            let mut rest = text.as_str();
            while let Some(at) = rest.find("](") {
                rest = &rest[at + 2..];
                let end = rest.find(')').unwrap_or(rest.len());
                let target = rest[..end].split_whitespace().next().unwrap_or("");
                links.push((line, target.trim_matches(['<', '>']).to_owned()));
                rest = &rest[end..];
            }
        }
        links
    }

    /// Paths of this repository's sources written as code: `src/app.rs`, `tests/api/`.
    fn code_paths(&self) -> Vec<(usize, String)> {
        let roots = [
            "src/",
            "tests/",
            "bench/",
            "scripts/",
            "migrations/",
            "vendor/",
            "docs/",
            "examples/",
        ];
        let mut paths = Vec::new();
        for (line, text) in self.prose() {
            for span in code_spans(&text) {
                let looks_like_a_path = roots.iter().any(|r| span.starts_with(r))
                    && span
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
                if looks_like_a_path {
                    paths.push((line, span.to_owned()));
                }
            }
        }
        paths
    }

    /// GitHub's anchors for the page's headings.
    fn anchors(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut anchors = Vec::new();
        for (_, line) in self.prose() {
            let Some(title) = line.strip_prefix('#') else {
                continue;
            };
            let title = title.trim_start_matches('#').trim();
            let slug: String = title
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            let n = seen.entry(slug.clone()).or_insert(0);
            anchors.push(match *n {
                0 => slug.clone(),
                n => format!("{slug}-{n}"),
            });
            *n += 1;
        }
        anchors
    }

    fn blocks(&self) -> Vec<Block> {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let Some(lang) = line.trim_start().strip_prefix("```") else {
                i += 1;
                continue;
            };
            let indent = line.len() - line.trim_start().len();
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("{}:{}: unclosed fence", self.name(), i + 1));
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!--"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|m| m.trim().to_owned());
            blocks.push(Block {
                line: i + 1,
                open: i,
                close,
                indent,
                lang: lang.trim().to_owned(),
                body: lines[i + 1..close]
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or(l.trim_start()).to_owned())
                    .collect(),
                marker,
            });
            i = close + 1;
        }
        blocks
    }

    /// Rows of the tables whose header names a `flag_column` and a `default_column`.
    fn table_rows_with(&self, flag_column: &str, default_column: &str) -> Vec<TableRow> {
        let mut rows = Vec::new();
        let mut columns: Option<(usize, usize)> = None;
        for (line, text) in self.prose() {
            let text = text.trim();
            if !text.starts_with('|') {
                columns = None;
                continue;
            }
            let cells: Vec<String> = text
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            match columns {
                None => {
                    let find = |name: &str| {
                        cells
                            .iter()
                            .position(|c| c.to_lowercase().split_whitespace().next() == Some(name))
                    };
                    // A header row; the other tables get usize::MAX and are skipped.
                    columns = Some(match (find(flag_column), find(default_column)) {
                        (Some(f), Some(d)) => (f, d),
                        _ => (usize::MAX, usize::MAX),
                    });
                }
                Some((f, d)) => {
                    if f == usize::MAX
                        || cells
                            .iter()
                            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
                    {
                        continue;
                    }
                    if let (Some(flag), Some(default)) = (cells.get(f), cells.get(d)) {
                        rows.push(TableRow {
                            line,
                            flag: flag.clone(),
                            default: default.clone(),
                        });
                    }
                }
            }
        }
        rows
    }
}

/// The contents of the `code` spans of a line.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn without_code_spans(text: &str) -> String {
    text.split('`').step_by(2).collect::<Vec<_>>().join("")
}
