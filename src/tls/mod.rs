//! HTTPS with rustls (ring provider, TLS 1.2 and 1.3 only). Loads the PEM pair given on the
//! command line, or the default dev pair under certs/, generated on first start.

pub mod dev_ca;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The default pair, relative to the working directory (or `--ephemeral`'s directory).
pub const DEFAULT_CERT: &str = "certs/localhost.crt";
pub const DEFAULT_KEY: &str = "certs/localhost.key";

/// Where the certificate and key come from.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when this start generated them (the default pair was missing).
    pub generated: bool,
}

impl TlsFiles {
    /// Explicit paths must exist; the defaults are generated (with a dev CA) when missing.
    /// The default pair lives under `base` (the working directory, or `--ephemeral`'s directory).
    pub fn resolve(base: &Path, cert: Option<&Path>, key: Option<&Path>) -> anyhow::Result<Self> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Self {
                cert: cert.to_owned(),
                key: key.to_owned(),
                generated: false,
            }),
            (None, None) => {
                let mut files = Self {
                    cert: base.join(DEFAULT_CERT),
                    key: base.join(DEFAULT_KEY),
                    generated: false,
                };
                // `try_exists`, not `exists`: a directory we cannot read is an error to report
                // as such, not a reason to try (and fail) to write new certificates into it.
                let present = |path: &Path| {
                    path.try_exists()
                        .with_context(|| format!("cannot read {}", path.display()))
                };
                if present(&files.cert)? && present(&files.key)? {
                    return Ok(files);
                }
                // Checked again under the lock: another instance started at the same moment
                // may have generated them while this one waited.
                let dir = files.cert.parent().unwrap_or(Path::new("."));
                let _generating = dev_ca::lock(dir)?;
                if !present(&files.cert)? || !present(&files.key)? {
                    dev_ca::generate(dir).context("cannot generate the dev certificates")?;
                    files.generated = true;
                }
                Ok(files)
            }
            _ => bail!("--cert and --key go together"),
        }
    }

    /// For the start-up log: the certificate's absolute path, and whether it is the dev one
    /// (which browsers trust only once the dev CA is trusted).
    pub fn describe(&self) -> String {
        let path = std::path::absolute(&self.cert).unwrap_or_else(|_| self.cert.clone());
        match (self.dev_ca(), self.generated) {
            (Some(ca), true) => format!(
                "{} (the dev certificate, generated now: browsers trust it once {} is trusted)",
                path.display(),
                ca.display()
            ),
            (Some(ca), false) => format!(
                "{} (the generated dev certificate: browsers trust it once {} is trusted)",
                path.display(),
                ca.display()
            ),
            (None, _) => format!("{} (not the dev certificate)", path.display()),
        }
    }

    /// The dev CA's certificate (absolute path) when the certificate in use is the dev one.
    pub fn dev_ca(&self) -> Option<PathBuf> {
        let first = CertificateDer::pem_file_iter(&self.cert)
            .ok()
            .and_then(|mut certs| certs.next())
            .and_then(Result::ok)?;
        let path = std::path::absolute(&self.cert).unwrap_or_else(|_| self.cert.clone());
        dev_ca::is_dev_certificate(&first).then(|| path.with_file_name(dev_ca::CA_CERT))
    }

    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read the TLS certificate {}", self.cert.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", self.cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("cannot read the TLS private key {}", self.key.display()))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS 1.2/1.3 are not supported by the crypto provider")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "{} and {} do not form a usable certificate/key pair",
                    self.cert.display(),
                    self.key.display()
                )
            })
    }
}
