//! `Authorization: Basic …` decoded (RFC 7617): the scheme case-insensitively, the token as
//! actix-web-httpauth decodes it (standard base64, padded), both parts in Unicode NFC. Every
//! failure is a 401 that says why.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use secrecy::SecretString;

use crate::error::ApiError;
use crate::store::users;

/// Basic credentials, decoded. The password is a `SecretString`: redacted in Debug, never logged.
#[derive(Debug)]
pub struct Credentials {
    pub user: String,
    pub password: SecretString,
}

pub(crate) fn unauthorized(detail: &str) -> ApiError {
    ApiError::Unauthorized(format!("{detail}; use HTTP Basic authentication"))
}

impl Credentials {
    /// Decodes `Authorization: Basic base64(user:password)`. The scheme is matched
    /// case-insensitively (RFC 9110 §11.1); the password is everything after the first colon.
    /// Both parts are normalised to NFC, as stored by `delivery-api user add` (RFC 7617 §2.1).
    pub fn from_header(value: Option<&HeaderValue>) -> Result<Self, ApiError> {
        let value = value.ok_or_else(|| unauthorized("missing Authorization header"))?;
        let text = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not visible ASCII"))?;
        let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized("only the Basic scheme is accepted"));
        }
        // The engine actix-web-httpauth's `Basic::parse` uses (padding required), decoded here
        // so that the credentials are copied once, not five times, on every request.
        let token = token.trim_start();
        let decoded = BASE64_STANDARD
            .decode(token)
            .ok()
            .filter(|_| !token.is_empty())
            .ok_or_else(|| unauthorized("the Basic credentials are not valid base64"))?;
        let mut user = String::from_utf8(decoded)
            .map_err(|_| unauthorized("the Basic credentials are not UTF-8"))?;
        let Some(colon) = user.find(':') else {
            return Err(unauthorized("the Basic credentials have no ':' separator"));
        };
        let password = user.split_off(colon + 1);
        user.truncate(colon);
        if password.is_empty() {
            return Err(unauthorized("empty password"));
        }
        if user.is_empty() {
            return Err(unauthorized("empty user name"));
        }
        let user = users::nfc(user);
        // No user can have such a name (`delivery-api user add` refuses it), so it is refused
        // here, before the database: PostgreSQL refuses a NUL in text with an error, not a "no".
        if !users::possible_name(&user) {
            return Err(unauthorized("no user can have this name"));
        }
        Ok(Self {
            user,
            password: users::nfc(password).into(),
        })
    }
}

impl FromRequest for Credentials {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_header(req.headers().get(header::AUTHORIZATION)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(value: &str) -> Result<Credentials, ApiError> {
        Credentials::from_header(Some(&HeaderValue::from_str(value).expect("header")))
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        // "demo:demo-password"
        for value in [
            "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk",
            "basic ZGVtbzpkZW1vLXBhc3N3b3Jk",
            "BASIC  ZGVtbzpkZW1vLXBhc3N3b3Jk",
        ] {
            let creds = parse(value).expect(value);
            assert_eq!(creds.user, "demo");
            assert_eq!(creds.password.expose_secret(), "demo-password");
        }
    }

    #[test]
    fn a_password_may_contain_colons() {
        // "alice:a:b"
        let creds = parse("Basic YWxpY2U6YTpi").expect("valid");
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.password.expose_secret(), "a:b");
    }

    #[test]
    fn malformed_credentials_are_refused_with_a_reason() {
        for (value, reason) in [
            ("Bearer abc", "only the Basic scheme"),
            ("Basic", "base64"),
            ("Basic !!!notbase64", "base64"),
            ("Basic ZGVtbw==", "':' separator"),  // "demo"
            ("Basic ZGVtbzo=", "empty password"), // "demo:"
            ("Basic OnNlY3JldA==", "empty user"), // ":secret"
            ("Basic //79", "UTF-8"),              // bytes ff fe fd
        ] {
            let err = parse(value).expect_err(value).to_string();
            assert!(err.contains(reason), "{value}: {err}");
        }
        assert!(Credentials::from_header(None).is_err());
    }
}

#[cfg(test)]
mod properties {
    use base64::Engine;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    proptest! {
        #[test]
        fn any_user_and_password_round_trip(user in "[^:\\p{Cc}]{1,24}", password in "\\PC{1,40}") {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let value = HeaderValue::from_str(&format!("Basic {token}")).expect("ASCII");
            let creds = Credentials::from_header(Some(&value)).expect("valid credentials");
            // Both come back in Unicode NFC (RFC 7617 §2.1).
            prop_assert_eq!(creds.user, users::nfc(&user));
            prop_assert_eq!(creds.password.expose_secret(), users::nfc(&password));
        }

        /// The decoding here is actix-web-httpauth's, done without its copies: on any token
        /// (valid base64 of anything, or not base64 at all) both accept the same user and
        /// password, or both refuse.
        #[test]
        fn decodes_as_actix_web_httpauth_does(
            raw in proptest::collection::vec(any::<u8>(), 0..40),
            noise in "[A-Za-z0-9+/=: ]{0,12}",
            encode in any::<bool>(),
        ) {
            let token = if encode {
                base64::engine::general_purpose::STANDARD.encode(&raw)
            } else {
                noise
            };
            let value = HeaderValue::from_str(&format!("Basic {token}")).expect("ASCII");
            use actix_web_httpauth::headers::authorization::{Basic, Scheme as _};
            let theirs = Basic::parse(&value)
                .ok()
                .and_then(|b| Some((b.user_id().to_string(), b.password()?.to_string())))
                .filter(|(user, _)| !user.is_empty() && users::possible_name(&users::nfc(user.as_str())));
            let ours = Credentials::from_header(Some(&value))
                .ok()
                .map(|c| (c.user, c.password.expose_secret().to_owned()));
            prop_assert_eq!(
                ours,
                theirs.map(|(user, password)| (users::nfc(user), users::nfc(password)))
            );
        }

        #[test]
        fn any_header_bytes_are_refused_or_accepted_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                match Credentials::from_header(Some(&value)) {
                    Ok(creds) => prop_assert!(!creds.user.is_empty() && !creds.user.contains(':')),
                    Err(e) => prop_assert!(matches!(e, ApiError::Unauthorized(_))),
                }
            }
        }
    }
}
