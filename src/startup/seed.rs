//! `--seed FILE.json`: a new database gets these deliveries (and users) instead of the built-in
//! sample. The whole file is read and checked before the database is even opened (each delivery
//! as a `POST /delivery` body, each user by the one name and password rule), so a bad file
//! leaves nothing behind; the store then replaces the sample in one transaction.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::routes::delivery::input;
use crate::store::deliveries::NewDelivery;
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

/// A seed file, checked: the deliveries as the store takes them, the users with their hashes.
pub struct Seed {
    file: std::path::PathBuf,
    deliveries: Vec<NewDelivery>,
    users: Vec<(String, String)>,
}

/// Reads and checks the whole file (and hashes its passwords): every refusal names the entry.
pub fn read(file: &Path) -> anyhow::Result<Seed> {
    let at = file.display();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read the seed file {at}"))?;
    let seed: SeedFile =
        serde_json::from_str(&text).with_context(|| format!("{at} is not a seed file"))?;
    let mut deliveries = Vec::with_capacity(seed.deliveries.len());
    let mut references = HashSet::new();
    for (i, raw) in seed.deliveries.iter().enumerate() {
        let new =
            input::delivery_from(raw).map_err(|e| anyhow::anyhow!("{at}: deliveries[{i}]: {e}"))?;
        if !references.insert(new.reference.clone()) {
            anyhow::bail!(
                "{at}: deliveries[{i}]: reference {:?} is already used by an earlier delivery",
                new.reference
            );
        }
        deliveries.push(new);
    }
    let mut users = Vec::with_capacity(seed.users.len());
    let mut names = HashSet::new();
    for (i, user) in seed.users.iter().enumerate() {
        let name = users::checked_name(&user.name)
            .map_err(|e| anyhow::anyhow!("{at}: users[{i}]: {e}: {:?}", user.name))?;
        if !names.insert(name.clone()) {
            anyhow::bail!("{at}: users[{i}]: user {name:?} appears twice");
        }
        let password = users::checked_password(user.password.expose_secret(), &name)
            .map_err(|e| anyhow::anyhow!("{at}: users[{i}] ({name:?}): {e}"))?;
        users.push((name, users::hash_password(&password)?));
    }
    Ok(Seed {
        file: file.to_owned(),
        deliveries,
        users,
    })
}

impl Seed {
    /// The checked deliveries and users (name, hash), for `--test-support`'s reset.
    pub fn into_data(self) -> (Vec<NewDelivery>, Vec<(String, String)>) {
        (self.deliveries, self.users)
    }
}

/// Replaces the sample data of a new database with the seed, in one transaction.
pub async fn load(db: &Db, seed: &Seed) -> anyhow::Result<()> {
    let at = seed.file.display();
    store::seed::replace_sample(db, &seed.deliveries, &seed.users)
        .await
        .with_context(|| format!("--seed {at}"))?;
    tracing::info!(
        deliveries = seed.deliveries.len(),
        users = seed.users.len(),
        "seeded from {at}",
    );
    Ok(())
}
