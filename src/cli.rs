//! `delivery-api user add|list|remove`: manage Basic-auth users in the same database file.

use std::io::BufRead;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use crate::config::UserCommand;
use crate::{db, users};

pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, db, .. } => {
            users::validate_name(&name).map_err(anyhow::Error::msg)?;
            let password = read_password(std::io::stdin().lock())?;
            let pool = db::connect(&db).await?;
            let hash =
                tokio::task::spawn_blocking(move || users::hash_password(&password)).await??;
            let created = users::upsert(&pool, &name, &hash).await?;
            println!(
                "{} user {name}",
                if created { "created" } else { "updated" }
            );
        }
        UserCommand::List { db } => {
            for name in users::list(&db::connect(&db).await?).await? {
                println!("{name}");
            }
        }
        UserCommand::Remove { name, db } => {
            if !users::remove(&db::connect(&db).await?, &name).await? {
                bail!("no user named {name:?}");
            }
            println!("removed user {name}");
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending. Never echoed, never logged.
fn read_password(mut input: impl BufRead) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!(
            "the password is empty: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | delivery-api user add NAME --password-stdin`"
        );
    }
    let secret = SecretString::from(password);
    if secret.expose_secret().len() < 8 {
        bail!("the password must have at least 8 characters");
    }
    Ok(secret)
}
