//! `delivery-api user add|list|remove`: manage Basic-auth users in the same database file.

use std::io::BufRead;

use anyhow::{Context, bail};
use secrecy::SecretString;

use std::process::ExitCode;

use crate::config::{CopyDataArgs, PreflightArgs, UserCommand};
use crate::preflight as doctor;
use crate::store::{self, users};

/// Every subcommand names the database it used (an absolute path, or the PostgreSQL server and
/// database): a relative `--database-url` (the default is `sqlite://data/delivery.db`) depends on
/// the directory it is run from, and a user added to the wrong database would otherwise look like
/// a wrong password. `list` prints it on standard error, so its standard output stays one name
/// per line.
pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, db, .. } => {
            let name = users::checked_name(&name).map_err(anyhow::Error::msg)?;
            let password = read_password(std::io::stdin().lock(), &name)?;
            let store::Connected { db, location, .. } = store::connect(&db.settings()).await?;
            let hash =
                tokio::task::spawn_blocking(move || users::hash_password(&password)).await??;
            let created = users::upsert(&db, &name, &hash).await?;
            if created {
                println!("user {name:?} added to {location}");
            } else {
                println!("user {name:?} updated (new password) in {location}");
            }
        }
        UserCommand::List { db } => {
            let store::Connected { db, location, .. } = store::connect(&db.settings()).await?;
            eprintln!("users in {location}:");
            for name in users::list(&db).await? {
                // A name from before the name rule may hold a control character: shown escaped,
                // never written raw to a terminal.
                if name.chars().any(char::is_control) {
                    println!("{name:?}");
                } else {
                    println!("{name}");
                }
            }
        }
        UserCommand::Remove { name, db } => {
            let name = users::nfc(&name);
            let store::Connected { db, location, .. } = store::connect(&db.settings()).await?;
            if !users::remove(&db, &name).await? {
                bail!("no user named {name:?} in {location}");
            }
            println!("user {name:?} removed from {location}");
        }
    }
    Ok(())
}

/// `delivery-api copy-data --from URL --to URL`: see `store::copy`.
pub async fn copy_data(args: &CopyDataArgs) -> anyhow::Result<()> {
    // No flag for the lock wait here: the target is new, and nothing else should write to it.
    let url = |url: &str| store::Settings {
        url: url.to_owned(),
        busy_timeout: std::time::Duration::from_secs(5),
    };
    let from = store::open_existing(&url(&args.from))
        .await
        .context("nothing to copy from")?;
    let to = store::connect(&url(&args.to)).await?;
    if !to.created {
        bail!(
            "the {} already existed: copy-data fills only a new database (its sample data is \
             replaced), so nothing is ever overwritten; give a new database (PostgreSQL: \
             dropdb, then createdb) and run it again",
            to.location
        );
    }
    let copied = match store::copy::copy(&from.db, &to.db).await {
        Ok(copied) => copied,
        Err(e) => {
            // A new SQLite file is removed again: a corrected retry finds nothing in its way.
            store::discard_new(to).await;
            return Err(e);
        }
    };
    println!(
        "copied {} users and {} deliveries from {} to {}",
        copied.users, copied.deliveries, from.location, to.location
    );
    Ok(())
}

/// `delivery-api preflight`: prints the report; exits 0 only when a browser could read the response.
pub async fn preflight(args: &PreflightArgs) -> ExitCode {
    if let Some(file) = &args.har {
        return preflight_har(args, file).await;
    }
    match doctor::run(args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print!("{}", doctor::render(&report));
            }
            // The codes are documented in `delivery-api preflight --help` (config.rs).
            if report.readable {
                ExitCode::SUCCESS
            } else if report.not_sent.is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `delivery-api preflight --har FILE`: a report per cross-origin request the browser recorded,
/// then one summary line; exits 0 only when every one was readable.
async fn preflight_har(args: &PreflightArgs, file: &std::path::Path) -> ExitCode {
    let mut reports = match doctor::har::judge(args, file) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.replay {
        for report in &mut reports {
            let now = match doctor::har::replay_args(args, report) {
                Ok(replay) => doctor::run(&replay).await.map(|now| now.verdict),
                Err(e) => Err(e),
            };
            report.replayed = Some(now.unwrap_or_else(|e| format!("not replayed: {e:#}")));
        }
    }
    let readable = reports.iter().filter(|r| r.readable).count();
    let unknown = reports.iter().filter(|r| r.not_sent.is_some()).count();
    let blocked = reports.len() - readable - unknown;
    if args.json {
        match serde_json::to_string_pretty(&reports) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        for report in &reports {
            print!("{}", doctor::render(report));
            if let Some(now) = &report.replayed {
                println!("Replayed now: {now}");
            }
            println!();
        }
        println!(
            "{} cross-origin request(s) in {}: {readable} readable, {blocked} blocked{}",
            reports.len(),
            file.display(),
            match unknown {
                0 => String::new(),
                n => format!(", {n} preflight(s) with no request after them"),
            }
        );
    }
    if blocked > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The first line of standard input, without its line ending. Never echoed, never logged.
fn read_password(mut input: impl BufRead, name: &str) -> anyhow::Result<SecretString> {
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
    users::checked_password(password, name).map_err(anyhow::Error::msg)
}
