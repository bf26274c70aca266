//! `--seed FILE.json`: a new database gets these deliveries (and users) instead of the built-in
//! sample. Each delivery passes the same checks as a `POST /delivery` body; the store then
//! replaces the sample in one transaction.

use std::path::Path;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::routes::delivery::input;
use crate::store::{self, Db, users};

/// `{"deliveries": [{reference, recipient, address, status?}], "users": [{name, password}]}`.
/// Without `users`, the demo user stays; with them, they replace it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    deliveries: Vec<Box<RawValue>>,
    #[serde(default)]
    users: Vec<SeedUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    name: String,
    password: SecretString,
}

/// Checks the whole file first, then replaces the sample data of a new database with it.
pub async fn seed(db: &Db, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the seed file {}", file.display()))?;
    let seed: SeedFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a seed file", file.display()))?;
    let mut deliveries = Vec::with_capacity(seed.deliveries.len());
    for (i, raw) in seed.deliveries.iter().enumerate() {
        let new = input::delivery_from(raw)
            .map_err(|e| anyhow::anyhow!("{}: deliveries[{i}]: {e}", file.display()))?;
        deliveries.push(new);
    }
    let mut accounts = Vec::with_capacity(seed.users.len());
    for user in &seed.users {
        let name = users::nfc(user.name.trim());
        if name.is_empty() || name.contains(':') {
            anyhow::bail!(
                "{}: user name {:?} is empty or has a colon",
                file.display(),
                user.name
            );
        }
        let hash = users::hash_password(&user.password)?;
        accounts.push((name, hash));
    }
    store::seed::replace_sample(db, &deliveries, &accounts)
        .await
        .with_context(|| format!("--seed {}", file.display()))?;
    tracing::info!(
        deliveries = deliveries.len(),
        users = accounts.len(),
        "seeded from {}",
        file.display()
    );
    Ok(())
}
