//! A static file host on `http://localhost:PORT`, as a built single-page app is deployed: what
//! tests/api/angular.rs serves the Angular app's `dist/browser/` with, on an origin of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// A built app on `http://localhost:PORT`, served as a static host would: GET of a file under
/// the root, `index.html` for any other path without an extension (the app's own routes), 404
/// otherwise. One response per connection (`Connection: close`). Stops when dropped.
pub struct StaticFiles {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl StaticFiles {
    pub async fn serve(root: &Path) -> Self {
        assert!(
            root.join("index.html").is_file(),
            "{} has no index.html: build the app first (examples/angular: scripts/build-angular-app, \
             which scripts/test runs)",
            root.display()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the app");
        let port = listener.local_addr().expect("addr").port();
        let root: Arc<Path> = root.into();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, root.clone()));
            }
        });
        Self { port, task }
    }

    /// `http://localhost:PORT`: the name, not 127.0.0.1, as `ng serve` shows it.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: tokio::net::TcpStream, root: Arc<Path>) {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    let read_head = async {
        reader.read_line(&mut request_line).await?;
        let mut line = String::new();
        while reader.read_line(&mut line).await? > 2 {
            line.clear();
        }
        std::io::Result::Ok(())
    };
    // Bounded, for a connection the browser opens ahead and never uses.
    if !matches!(
        tokio::time::timeout(Duration::from_secs(30), read_head).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let (status, file) = match resolve(&root, path) {
        Some(file) => ("200 OK", file),
        None => ("404 Not Found", PathBuf::new()),
    };
    let body = tokio::fs::read(&file).await.unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n\r\n",
        content_type(&file),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// The file `path` names under `root`; `index.html` for a path without an extension.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|segment| segment == "..") {
        return None;
    }
    let file = root.join(relative);
    if file.is_file() {
        return Some(file);
    }
    let last = relative.rsplit('/').next().unwrap_or_default();
    (!last.contains('.')).then(|| root.join("index.html"))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
