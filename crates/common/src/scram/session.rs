//! Session tokens: what a gRPC client gets after a SCRAM exchange and sends on every
//! call (`authorization: Bearer TOKEN`) instead of repeating the exchange.
//!
//! `rill1.MECHANISM.EXPIRES_MS.USER.MAC`, USER and MAC in unpadded URL-safe base64, MAC =
//! HMAC(server key of the user's credential, the fields before it). Any node can check a
//! token (every node holds the credentials), none stores one. A token dies when it
//! expires, when the user is deleted, or when the user's password changes (the server key
//! with it). Only nodes know server keys: clients can neither forge nor alter a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use super::{constant_time_eq, ScramCredential, ScramMechanism};

const VERSION: &str = "rill1";

/// A token's claims, read before its MAC is checked (they say which credential to check
/// it with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub expires_ms: u64,
    signed: String,
    mac: Vec<u8>,
}

impl SessionToken {
    /// The token for `user` (authenticated with `credential`) valid until `expires_ms`.
    pub fn issue(user: &str, credential: &ScramCredential, expires_ms: u64) -> String {
        let signed = format!(
            "{VERSION}.{}.{expires_ms}.{}",
            credential.mechanism.name(),
            B64URL.encode(user)
        );
        let mac = credential
            .mechanism
            .hmac(&credential.server_key, signed.as_bytes());
        format!("{signed}.{}", B64URL.encode(mac))
    }

    /// Reads a token's claims; `None` if it is not a token.
    pub fn parse(token: &str) -> Option<Self> {
        let (signed, mac) = token.rsplit_once('.')?;
        let mut fields = signed.split('.');
        let (Some(VERSION), Some(mechanism), Some(expires), Some(user), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return None;
        };
        Some(Self {
            user: String::from_utf8(B64URL.decode(user).ok()?).ok()?,
            mechanism: ScramMechanism::from_name(mechanism)?,
            expires_ms: expires.parse().ok()?,
            signed: signed.to_string(),
            mac: B64URL.decode(mac).ok()?,
        })
    }

    /// Whether `credential` (the user's current one for the token's mechanism) signed
    /// this token and it has not expired at `now_ms`.
    pub fn is_valid(&self, credential: &ScramCredential, now_ms: u64) -> bool {
        let expected = credential
            .mechanism
            .hmac(&credential.server_key, self.signed.as_bytes());
        credential.mechanism == self.mechanism
            && now_ms < self.expires_ms
            && constant_time_eq(&expected, &self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(password: &str) -> ScramCredential {
        let mechanism = ScramMechanism::Sha256;
        let salt = b"salt".to_vec();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, 4096);
        ScramCredential::from_salted_password(mechanism, &salted, salt, 4096).unwrap()
    }

    #[test]
    fn a_token_is_valid_until_it_expires_and_only_for_its_credential() {
        let alice = credential("pw");
        let token = SessionToken::issue("alice.o,=x", &alice, 1_000);
        let parsed = SessionToken::parse(&token).unwrap();
        assert_eq!(parsed.user, "alice.o,=x");
        assert_eq!(parsed.mechanism, ScramMechanism::Sha256);
        assert!(parsed.is_valid(&alice, 999));
        assert!(!parsed.is_valid(&alice, 1_000), "expired");
        assert!(
            !parsed.is_valid(&credential("new password"), 999),
            "the password changed"
        );
    }

    #[test]
    fn an_altered_token_is_refused() {
        let alice = credential("pw");
        let token = SessionToken::issue("alice", &alice, 1_000);
        let longer = token.replacen(".1000.", ".99999.", 1);
        assert!(!SessionToken::parse(&longer).unwrap().is_valid(&alice, 999));
        let other_user = token.replacen(&B64URL.encode("alice"), &B64URL.encode("admin"), 1);
        assert!(!SessionToken::parse(&other_user)
            .unwrap()
            .is_valid(&alice, 999));
        for junk in [
            "",
            "rill1",
            "rill1.SCRAM-SHA-256.1.YQ",
            "rill2.SCRAM-SHA-256.1.YQ.YQ",
        ] {
            assert_eq!(SessionToken::parse(junk), None, "{junk:?}");
        }
    }
}
