//! The client's side of a SCRAM exchange (RFC 5802), as Kafka clients compute it: what
//! the Rust client uses to authenticate over gRPC. Pure: the caller brings the nonce.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{constant_time_eq, ScramError, ScramMechanism};

/// One exchange, from the client-first message to the check of the server's signature.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    client_first_bare: String,
    client_nonce: String,
}

/// What the client expects back after sending its proof.
pub struct ScramClientFinal {
    /// The client-final message to send.
    pub message: Vec<u8>,
    server_signature: Vec<u8>,
}

impl std::fmt::Debug for ScramClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramClientFinal(<redacted>)")
    }
}

impl ScramClient {
    /// Starts an exchange for `username`; `nonce` must be fresh random printable
    /// characters without commas.
    pub fn new(mechanism: ScramMechanism, username: &str, nonce: &str) -> Self {
        let escaped = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            mechanism,
            client_first_bare: format!("n={escaped},r={nonce}"),
            client_nonce: nonce.to_string(),
        }
    }

    /// The client-first message (`n,,n=USER,r=NONCE`).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server-first message with the proof that we know `password`.
    pub fn respond(
        self,
        server_first: &[u8],
        password: &[u8],
    ) -> Result<ScramClientFinal, ScramError> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = BASE64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        let salt = salt.ok_or(ScramError::Malformed("no salt"))?;
        let iterations = iterations.ok_or(ScramError::Malformed("no iterations"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::Malformed(
                "the server's nonce does not extend ours",
            ));
        }
        if !(super::MIN_ITERATIONS..=super::MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations);
        }
        let mechanism = self.mechanism;
        let salted = mechanism.salted_password(password, &salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let stored_key = mechanism.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        Ok(ScramClientFinal {
            message: format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
            server_signature: mechanism.hmac(&server_key, auth_message.as_bytes()),
        })
    }
}

impl ScramClientFinal {
    /// Checks the server-final message: the server too knew the credential.
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or(ScramError::Malformed("no server signature"))?;
        if constant_time_eq(&signature, &self.server_signature) {
            Ok(())
        } else {
            Err(ScramError::InvalidCredentials)
        }
    }
}
