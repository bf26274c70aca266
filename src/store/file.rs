//! Noticing that the SQLite file was deleted or replaced underneath the running server.

use std::path::PathBuf;

/// The database file as opened at start-up, to notice when it is deleted or replaced underneath
/// the running server: open connections would otherwise keep reading and writing the unlinked
/// file, and acknowledged writes would vanish at the next start.
#[derive(Debug, Clone)]
pub struct DbFile {
    path: PathBuf,
    /// (device, inode) at start-up; `None` for in-memory databases or non-Unix systems.
    identity: Option<(u64, u64)>,
}

impl DbFile {
    pub fn new(path: PathBuf) -> Self {
        let identity = identity(&path);
        Self { path, identity }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Ok while the file at the path is still the one that was opened (one `stat`, ~1 µs).
    pub fn check(&self) -> Result<(), sqlx::Error> {
        let Some(expected) = self.identity else {
            return Ok(());
        };
        if identity(&self.path) == Some(expected) {
            return Ok(());
        }
        let why = if self.path.exists() {
            "was replaced by another file: restart the service to open it"
        } else {
            "is missing: restore it (the service recovers when the same file is back)"
        };
        // An I/O error: `classify` calls it unavailable (503, and recovery when the file is back).
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the database file {} {why}", self.path.display()),
        )))
    }
}

#[cfg(unix)]
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}
