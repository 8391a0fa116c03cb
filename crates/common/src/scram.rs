//! SCRAM (RFC 5802, RFC 7677) as Kafka uses it: SCRAM-SHA-256 and SCRAM-SHA-512
//! credentials, stored as salted hashes (never the password), and the server's side of the
//! two-message exchange. Pure: the caller brings the salt and the server nonce.
//!
//! ```text
//! client-first   n,,n=USER,r=CNONCE
//! server-first   r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
//! client-final   c=biws,r=CNONCE+SNONCE,p=PROOF
//! server-final   v=SERVER_SIGNATURE
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

mod client;
mod session;

pub use client::{ScramClient, ScramClientFinal};
pub use session::SessionToken;

/// Kafka's bounds on a credential's iteration count.
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// The two SCRAM mechanisms Kafka clients speak.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [Self::Sha256, Self::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's number for the mechanism (DescribeUserScramCredentials).
    pub fn kafka_type(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha256 => run::<Hmac<Sha256>>(key, data),
            Self::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Hi(password, salt, i) of RFC 5802: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Self::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the cluster stores of a user's password for one mechanism: enough to check a
/// proof, not enough to make one.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why an exchange or a credential was refused. The text never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")]
    Iterations,
    #[error("invalid credentials")]
    InvalidCredentials,
}

impl ScramCredential {
    /// The credential for a salted password (`Hi(password, salt, iterations)`), as a
    /// client sends it (Kafka's AlterUserScramCredentials): the password itself never
    /// reaches the cluster.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Result<Self, ScramError> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations);
        }
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Ok(Self {
            mechanism,
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        })
    }

    /// Whether `password` is the one this credential was made from (SASL PLAIN).
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let salted = self
            .mechanism
            .salted_password(password, &self.salt, self.iterations);
        let client_key = self.mechanism.hmac(&salted, b"Client Key");
        constant_time_eq(&self.mechanism.hash(&client_key), &self.stored_key)
    }
}

/// The client's first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    pub username: String,
    client_nonce: String,
    bare: String,
}

impl ClientFirst {
    /// Parses `n,,n=USER,r=NONCE` (no channel binding, no authorization identity other
    /// than the user itself).
    pub fn parse(message: &[u8]) -> Result<Self, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let rest = text
            .strip_prefix("n,")
            .or_else(|| text.strip_prefix("y,"))
            .ok_or(ScramError::Malformed("channel binding is not supported"))?;
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
        let mut username = None;
        let mut nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", v)) => username = Some(unescape_name(v)?),
                Some(("r", v)) if !v.is_empty() => nonce = Some(v.to_string()),
                Some(("m", _)) => {
                    return Err(ScramError::Malformed("extensions are not supported"))
                }
                _ => {}
            }
        }
        let username = username.ok_or(ScramError::Malformed("no user name"))?;
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if unescape_name(authzid)? != username {
                return Err(ScramError::Malformed(
                    "authorization id differs from the user",
                ));
            }
        }
        Ok(Self {
            username,
            client_nonce: nonce.ok_or(ScramError::Malformed("no nonce"))?,
            bare: bare.to_string(),
        })
    }
}

/// The server's side of one exchange after its first answer.
#[derive(Debug)]
pub struct ServerExchange {
    username: String,
    credential: ScramCredential,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ServerExchange {
    /// Answers `client` with the server-first message; `server_nonce` must be fresh
    /// random printable characters without commas.
    pub fn start(
        client: &ClientFirst,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> (Self, Vec<u8>) {
        let nonce = format!("{}{server_nonce}", client.client_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let answer = server_first.clone().into_bytes();
        (
            Self {
                username: client.username.clone(),
                credential,
                client_first_bare: client.bare.clone(),
                server_first,
                nonce,
            },
            answer,
        )
    }

    /// The user the client named.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Checks the client's proof; on success returns the server-final message.
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", v)) => binding = Some(v),
                Some(("r", v)) => nonce = Some(v),
                _ => {}
            }
        }
        // "biws" is base64("n,,"): no channel binding, no authorization identity; "eSws"
        // is "y,,".
        if !matches!(binding, Some("biws") | Some("eSws")) {
            return Err(ScramError::Malformed("unexpected channel binding"));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::InvalidCredentials);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let mechanism = self.credential.mechanism;
        let signature = mechanism.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::InvalidCredentials);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !constant_time_eq(&mechanism.hash(&client_key), &self.credential.stored_key) {
            return Err(ScramError::InvalidCredentials);
        }
        let server_signature = mechanism.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// SASL PLAIN's message: `[authzid] NUL user NUL password`.
pub fn parse_plain(message: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ScramError::Malformed(
            "PLAIN needs authzid, user and password",
        ));
    };
    let user = String::from_utf8(user.to_vec()).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    if user.is_empty() || (!authzid.is_empty() && authzid != user.as_bytes()) {
        return Err(ScramError::Malformed(
            "authorization id differs from the user",
        ));
    }
    Ok((user, password.to_vec()))
}

/// `=2C` and `=3D` stand for `,` and `=` in a SCRAM name.
fn unescape_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let code = rest.get(at..at + 3);
        match code {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
