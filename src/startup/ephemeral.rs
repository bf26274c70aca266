//! `--ephemeral`: the database, and the dev certificates unless `--cert` is given, live in a new
//! private temporary directory (0700), removed at exit (not after `kill -9`:
//! nothing can do that).

use std::path::Path;

use anyhow::Context;

/// A temporary directory for one run, removed when dropped.
#[derive(Debug)]
pub struct Ephemeral {
    dir: Option<tempfile::TempDir>,
}

impl Ephemeral {
    pub fn create() -> anyhow::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("delivery-api-");
        #[cfg(unix)]
        {
            // It will hold the database and the dev CA's private key: this user only.
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        let dir = builder
            .tempdir()
            .context("cannot create a temporary directory for --ephemeral")?;
        Ok(Self { dir: Some(dir) })
    }

    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new(""), tempfile::TempDir::path)
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir().join("delivery.db").display())
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let path = dir.path().to_owned();
        // `close` reports what the implicit drop would swallow.
        if let Err(e) = dir.close() {
            tracing::warn!(dir = %path.display(), error = %e, "cannot remove the ephemeral directory");
        }
    }
}
