//! A local development CA and a `localhost` server certificate signed by it (rcgen).
//!
//! Trusting `dev-ca.crt` once (curl `--cacert`, a browser, reqwest) makes every regenerated server
//! certificate verify, without ever disabling certificate checks.

use std::fs;
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub const CA_CERT: &str = "dev-ca.crt";
pub const CA_KEY: &str = "dev-ca.key";
pub const SERVER_CERT: &str = "localhost.crt";
pub const SERVER_KEY: &str = "localhost.key";

/// The dev CA's common name: in the issuer of every certificate it signs.
pub const CA_NAME: &str = "delivery-api local development CA";

const DAY_SECS: i64 = 86_400;

/// Writes `localhost.crt`/`.key` in `dir`, signed by `dev-ca.crt`/`.key` there (the CA is reused if
/// present, so a browser that trusts it keeps trusting; otherwise it is created).
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let issuer = load_or_create_ca(dir)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = name("localhost");
    params.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // 397 days: within the 398-day limit browsers apply to server certificates.
    set_validity(&mut params, 397);

    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write(&dir.join(SERVER_CERT), &cert.pem(), false)?;
    write(&dir.join(SERVER_KEY), &key.serialize_pem(), true)?;
    tracing::info!(
        dir = %dir.display(),
        "generated a dev CA certificate ({CA_CERT}) and a localhost certificate signed by it"
    );
    Ok(())
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert_path.exists() && key_path.exists() {
        let key = KeyPair::from_pem(&fs::read_to_string(&key_path)?)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        let cert_pem = fs::read_to_string(&cert_path)?;
        return Issuer::from_ca_cert_pem(&cert_pem, key)
            .with_context(|| format!("cannot use {} as a CA", cert_path.display()));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = name(CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, 10 * 365);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write(&cert_path, &cert.pem(), false)?;
    write(&key_path, &key.serialize_pem(), true)?;
    Ok(Issuer::new(params, key))
}

/// True when `der` (a certificate) carries the dev CA's name: the dev certificate, or the CA itself.
/// A byte search is enough for a start-up message: another CA's certificate never contains it.
pub fn is_dev_certificate(der: &[u8]) -> bool {
    der.windows(CA_NAME.len()).any(|w| w == CA_NAME.as_bytes())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "delivery-api (development only)");
    dn
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    params.not_before = now - std::time::Duration::from_secs(DAY_SECS as u64);
    params.not_after = now + std::time::Duration::from_secs((days * DAY_SECS) as u64);
}

/// Writes a PEM file; private keys are readable by their owner only.
/// Writes `pem` to `path` whole: into a new temporary file beside it (0600 for a private key from
/// the start, never readable by others for a moment), then renamed over `path`, so that a reader
/// sees the old file or the new one, never half of one.
fn write(path: &Path, pem: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".dev-ca-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(fs::Permissions::from_mode(if private {
                0o600
            } else {
                0o644
            }));
        }
        let mut file = builder.tempfile_in(dir)?;
        file.write_all(pem.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Holds `dir`'s generation lock (an exclusive lock on `dir/.generate.lock`) until dropped:
/// several instances started at once from one folder generate the dev certificates once, and
/// each of them then serves the pair that the shared `dev-ca.crt` verifies.
pub fn lock(dir: &Path) -> anyhow::Result<fs::File> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(".generate.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}
