//! SASL on the Kafka listener (KIP-43, KIP-152): one state machine per connection,
//! I/O-free. With `sasl.enabled.mechanisms` set, a connection may send only ApiVersions
//! and SaslHandshake until it has authenticated; SCRAM-SHA-256/512 and PLAIN are checked
//! against the users in the metadata log (salted hashes; PLAIN recomputes the hash).
//!
//! ```text
//! AwaitingHandshake --SaslHandshake(enabled mechanism)--> Handshaken
//! Handshaken --SaslAuthenticate(PLAIN ok)----------------> Authenticated
//! Handshaken --SaslAuthenticate(SCRAM client-first)-----> ScramStarted
//! ScramStarted --SaslAuthenticate(SCRAM client-final ok)-> Authenticated
//! any failure -------------------------------------------> Failed (the next request closes)
//! ```

use std::collections::BTreeMap;

use rill_common::scram::{self, ClientFirst, ScramCredential, ScramMechanism, ServerExchange};
use rill_common::ErrorCode;

/// A SASL mechanism the Kafka listener can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        if name == "PLAIN" {
            return Some(Self::Plain);
        }
        ScramMechanism::from_name(name).map(Self::Scram)
    }
}

/// Where one connection stands.
#[derive(Debug)]
pub(crate) enum Authentication {
    /// SASL is off: every request is served (principal `User:ANONYMOUS`).
    Open,
    AwaitingHandshake,
    Handshaken(SaslMechanism),
    ScramStarted(Box<ServerExchange>),
    /// The connection authenticated as `user` (also recorded in its span).
    Authenticated {
        user: String,
    },
    Failed,
}

/// A refused step: the code for the response and a message without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub code: ErrorCode,
    pub message: String,
    /// The user the client named, if it got that far (for the audit line).
    pub user: Option<String>,
}

impl Refused {
    fn new(code: ErrorCode, message: impl Into<String>, user: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            user,
        }
    }
}

/// What a SaslAuthenticate step gives back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these bytes; the exchange goes on.
    Continue(Vec<u8>),
    /// Send these bytes; `user` is authenticated.
    Done { user: String, answer: Vec<u8> },
}

/// The message clients see for any bad credential (which part was wrong is not said).
const INVALID_CREDENTIALS: &str = "Authentication failed: invalid username or password";

impl Authentication {
    /// A new connection. With SASL on it must authenticate; without, a client that
    /// presented a TLS certificate is its common name (`certificate_user`), else anonymous.
    pub(crate) fn new(enabled: &[SaslMechanism], certificate_user: Option<String>) -> Self {
        match certificate_user {
            _ if !enabled.is_empty() => Self::AwaitingHandshake,
            Some(user) => Self::Authenticated { user },
            None => Self::Open,
        }
    }

    /// Who the connection is: `User:NAME` once authenticated, else `User:ANONYMOUS`.
    pub(crate) fn principal(&self) -> String {
        match self {
            Self::Authenticated { user } => format!("User:{user}"),
            _ => rill_metadata::access::ANONYMOUS.to_string(),
        }
    }

    /// Whether a request of API `key` may be served now.
    pub(crate) fn admits(&self, key: kafka_protocol::messages::ApiKey) -> bool {
        use kafka_protocol::messages::ApiKey;
        match self {
            Self::Open => true,
            Self::Authenticated { .. } => {
                !matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
            }
            Self::AwaitingHandshake => matches!(key, ApiKey::ApiVersions | ApiKey::SaslHandshake),
            Self::Handshaken(_) | Self::ScramStarted(_) => key == ApiKey::SaslAuthenticate,
            Self::Failed => false,
        }
    }

    /// SaslHandshake: picks `mechanism` if it is enabled.
    pub(crate) fn handshake(
        &mut self,
        mechanism: &str,
        enabled: &[SaslMechanism],
    ) -> Result<(), Refused> {
        if !matches!(self, Self::AwaitingHandshake) {
            return Err(Refused::new(
                ErrorCode::IllegalSaslState,
                "no SASL handshake expected now",
                None,
            ));
        }
        match SaslMechanism::from_name(mechanism).filter(|m| enabled.contains(m)) {
            Some(m) => {
                *self = Self::Handshaken(m);
                Ok(())
            }
            None => {
                *self = Self::Failed;
                Err(Refused::new(
                    ErrorCode::UnsupportedSaslMechanism,
                    format!("{mechanism:?} is not enabled"),
                    None,
                ))
            }
        }
    }

    /// SaslAuthenticate: one step of the chosen mechanism against `users`.
    /// `server_nonce` is fresh random text without commas (used by SCRAM's first step).
    pub(crate) fn authenticate(
        &mut self,
        bytes: &[u8],
        users: &BTreeMap<String, Vec<ScramCredential>>,
        server_nonce: &str,
    ) -> Result<Step, Refused> {
        let state = std::mem::replace(self, Self::Failed);
        let step = match state {
            Self::Handshaken(SaslMechanism::Plain) => {
                let (user, password) = scram::parse_plain(bytes).map_err(|e| {
                    Refused::new(ErrorCode::SaslAuthenticationFailed, e.to_string(), None)
                })?;
                let known = users
                    .get(&user)
                    .is_some_and(|cs| cs.first().is_some_and(|c| c.verify_password(&password)));
                if !known {
                    return Err(Refused::new(
                        ErrorCode::SaslAuthenticationFailed,
                        INVALID_CREDENTIALS,
                        Some(user),
                    ));
                }
                Step::Done {
                    user,
                    answer: Vec::new(),
                }
            }
            Self::Handshaken(SaslMechanism::Scram(mechanism)) => {
                let client = ClientFirst::parse(bytes).map_err(|e| {
                    Refused::new(ErrorCode::SaslAuthenticationFailed, e.to_string(), None)
                })?;
                let credential = users
                    .get(&client.username)
                    .and_then(|cs| cs.iter().find(|c| c.mechanism == mechanism))
                    .cloned()
                    .ok_or_else(|| {
                        Refused::new(
                            ErrorCode::SaslAuthenticationFailed,
                            INVALID_CREDENTIALS,
                            Some(client.username.clone()),
                        )
                    })?;
                let (exchange, answer) = ServerExchange::start(&client, credential, server_nonce);
                *self = Self::ScramStarted(Box::new(exchange));
                return Ok(Step::Continue(answer));
            }
            Self::ScramStarted(exchange) => {
                let user = exchange.username().to_string();
                let answer = exchange.finish(bytes).map_err(|_| {
                    Refused::new(
                        ErrorCode::SaslAuthenticationFailed,
                        INVALID_CREDENTIALS,
                        Some(user.clone()),
                    )
                })?;
                Step::Done { user, answer }
            }
            other => {
                *self = other;
                return Err(Refused::new(
                    ErrorCode::IllegalSaslState,
                    "no SASL authentication expected now",
                    None,
                ));
            }
        };
        if let Step::Done { user, .. } = &step {
            *self = Self::Authenticated { user: user.clone() };
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests;
