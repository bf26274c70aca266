//! Users and their argon2id password hashes, shared by the Basic-auth guard and `delivery-api user`.
//! Passwords only ever live in `SecretString`s (redacted in Debug) and are never stored or logged.

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use super::{Db, on_either};

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo-password";

/// Checked against when the user does not exist, so that an unknown name costs as much as a wrong
/// password and names cannot be discovered by timing. (It is the hash of a random string.)
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cEn9ZgxQv2B6ZPLYm0seUA$cvY8ABA0TpqJ5dhvJRxHZFrwL4Rtj/RJMl7zlgQZDdw";

/// argon2id with argon2's defaults, which are the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a password to a PHC string (`$argon2id$v=19$...`) with a fresh random salt. CPU-heavy.
pub fn hash_password(password: &SecretString) -> anyhow::Result<String> {
    let hash = hasher()
        .hash_password(password.expose_secret().as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// Verifies a password against a stored hash, or against the dummy hash when `hash` is `None`
/// (the user does not exist), so both failures cost the same. CPU-heavy: call off the async workers.
pub fn verify_password(hash: Option<&str>, password: &SecretString) -> bool {
    verify_password_in(hash, password, &mut Vec::new())
}

/// Like [`verify_password`], with argon2's working memory (19 MiB) supplied by the caller, so a
/// server can reuse a few buffers instead of allocating one per attempt: under a flood of wrong
/// passwords, fresh allocations on the blocking threads left the allocator holding ~700 MB.
pub fn verify_password_in(
    hash: Option<&str>,
    password: &SecretString,
    memory: &mut Vec<Block>,
) -> bool {
    let computed = (|| {
        let parsed = PasswordHash::new(hash.unwrap_or(DUMMY_HASH)).ok()?;
        let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
        let params = Params::try_from(&parsed).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        memory.resize(params.block_count(), Block::default());
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = out.get_mut(..expected.len())?;
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt,
                out,
                &mut memory[..],
            )
            .ok()?;
        // `Output` compares in constant time.
        Some(Output::new(out).ok()? == *expected)
    })();
    if computed.is_none() {
        tracing::error!("a stored password hash cannot be used (not a valid argon2 PHC string)");
    }
    computed == Some(true) && hash.is_some()
}

pub async fn password_hash(db: &Db, name: &str) -> sqlx::Result<Option<String>> {
    on_either!(timed db, |pool| sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE name = $1"
    )
    .bind(name)
    .fetch_optional(pool)
    .await)
}

/// The users revision (bumped by the database on any change to users) and the user's hash, read
/// together (one statement, one snapshot) so that a cached login is tied to the revision it was
/// verified under.
pub async fn password_hash_at_revision(db: &Db, name: &str) -> sqlx::Result<(u64, Option<String>)> {
    let (revision, hash): (i64, Option<String>) = on_either!(timed db, |pool| sqlx::query_as(
        "SELECT r.revision, u.password_hash
         FROM users_revision r LEFT JOIN users u ON u.name = $1"
    )
    .bind(name)
    .fetch_one(pool)
    .await)?;
    Ok((revision as u64, hash))
}

/// Creates the user or replaces its password. Returns true when the user was new.
pub async fn upsert(db: &Db, name: &str, hash: &str) -> sqlx::Result<bool> {
    let existed = password_hash(db, name).await?.is_some();
    let sql = db.sql().upsert_user;
    on_either!(timed db, |pool| sqlx::query(sql)
        .bind(name)
        .bind(hash)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(!existed)
}

pub async fn list(db: &Db) -> sqlx::Result<Vec<String>> {
    on_either!(timed db, |pool| sqlx::query_scalar(
        "SELECT name FROM users ORDER BY name"
    )
    .fetch_all(pool)
    .await)
}

/// Returns true when a user was removed.
pub async fn remove(db: &Db, name: &str) -> sqlx::Result<bool> {
    let removed = on_either!(timed db, |pool| sqlx::query("DELETE FROM users WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(removed > 0)
}

/// Checks a user name given on the command line: what Basic auth can carry (RFC 7617: no colon).
/// Unicode NFC (RFC 7617 §2.1: with `charset="UTF-8"`, user names and passwords are compared in
/// Normalization Form C): "é" typed as one code point or as "e" + a combining accent is the same.
/// Applied to every name and password that comes in, from a request or from `delivery-api user`.
pub fn nfc<S: AsRef<str> + Into<String>>(text: S) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    if text.as_ref().is_ascii() {
        return text.into(); // ASCII is always in NFC: no table lookups (or copy) on every request
    }
    text.as_ref().nfc().collect()
}

/// Whether any user, ever, can have this name (what Basic auth can carry: 1 to 64 characters, no colon,
/// no control character): a login under any other name is refused before the database is asked.
/// Looser than [`validate_name`], so that users created under an older rule can still log in.
pub fn possible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.contains(':')
        && !name.chars().any(char::is_control)
}

/// The user-name rule, the same for `user add`, `--seed` and `copy-data`: 1 to 64 characters
/// (after NFC), no colon (RFC 7617: it separates the name from the password), no control or bidi
/// characters (a name is printed in logs and by `user list`), no space at either end, and not
/// only spaces.
pub fn validate_name(name: &str) -> Result<(), String> {
    let length = name.chars().count();
    if length == 0 || length > 64 {
        return Err("a user name has 1 to 64 characters".into());
    }
    if name.contains(':') || name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(
            "a user name cannot contain ':' (RFC 7617), control characters (line breaks, tabs, \
             escapes) or bidi controls"
                .into(),
        );
    }
    if name.trim() != name || name.trim().is_empty() {
        return Err("a user name cannot start or end with a space, nor be only spaces".into());
    }
    Ok(())
}

/// A user name as given, in NFC, if it follows the rule ([`validate_name`]).
pub fn checked_name(raw: &str) -> Result<String, String> {
    let name = nfc(raw);
    validate_name(&name).map(|()| name)
}

/// Shortest password accepted, in characters (after NFC).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Passwords that lead the lists of leaked ones: an attacker tries these first.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The password rule, the same for `user add` and `--seed`: in NFC (how Basic auth compares it,
/// so a password typed in another normalization still logs in), at least
/// [`MIN_PASSWORD_CHARS`] characters that are not all spaces, no control characters (they cannot
/// be typed into a login form reliably), and none of the commonly leaked passwords, nor the user's
/// own name.
pub fn checked_password(raw: &str, name: &str) -> Result<SecretString, String> {
    let password = nfc(raw);
    if password.chars().count() < MIN_PASSWORD_CHARS || password.trim().is_empty() {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters, not all spaces"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("the password cannot contain control characters".into());
    }
    let lower = password.to_lowercase();
    let common = COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == lower);
    if common || lower == name.to_lowercase() || lower.chars().all(|c| lower.starts_with(c)) {
        return Err(
            "this password is among the first an attacker tries (a commonly leaked one, the \
             user's name, or one character repeated): choose another"
                .into(),
        );
    }
    Ok(SecretString::from(password))
}

/// U+202A–U+202E and U+2066–U+2069: text that displays as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ASCII shortcut gives what full normalization gives, for any text.
        #[test]
        fn nfc_matches_the_full_normalization(text in "(\\PC|e\u{301}|\u{212b}){0,20}") {
            use unicode_normalization::UnicodeNormalization as _;
            proptest::prop_assert_eq!(nfc(&text), text.nfc().collect::<String>());
        }
    }

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_password(&"s3cret".into()).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(Some(&hash), &"s3cret".into()));
        assert!(!verify_password(Some(&hash), &"s3cret ".into()));
    }

    #[test]
    fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        assert!(!verify_password(None, &"anything".into()));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses"
        );
    }

    #[test]
    fn names_with_a_colon_are_refused() {
        assert!(validate_name("a:b").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("alice").is_ok());
    }

    #[test]
    fn one_name_rule_refuses_what_would_print_or_log_as_something_else() {
        for bad in [
            " ",
            "   ",
            " alice",
            "alice ",
            "a\nb",
            "a\tb",
            "a\u{1b}[31mb",
            "a\u{202e}b",
        ] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            checked_name("Jose\u{301}").as_deref(),
            Ok("Jos\u{e9}"),
            "NFC"
        );
        assert!(checked_name("ana maria").is_ok(), "a space inside is fine");
    }

    #[test]
    fn one_password_rule_refuses_short_blank_common_and_control_passwords() {
        let refused = |p: &str| checked_password(p, "alice").is_err();
        for bad in [
            "",
            "x",
            "1234567",
            "12345678",
            "password",
            "PassWord",
            "        ",
            "aaaaaaaa",
            "alice",
            "ALICE",
            "demo-password",
            "long enough\u{7}",
        ] {
            assert!(refused(bad), "{bad:?}");
        }
        assert!(!refused("correct horse battery"));
        // Six characters of three bytes each are still six characters: too short.
        assert!(refused("\u{00e9}\u{00e9}\u{00e9}\u{00e9}\u{00e9}\u{00e9}"));
        // A decomposed password is stored as NFC, as Basic auth compares it.
        let decomposed = "cafe\u{301} au lait";
        let stored = checked_password(decomposed, "alice").expect("accepted");
        assert_eq!(stored.expose_secret(), "caf\u{e9} au lait");
    }
}
