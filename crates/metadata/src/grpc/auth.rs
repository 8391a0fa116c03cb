//! Who is calling, on the client gRPC services: the authentication layer in front of
//! them (`Authentication`, a tonic interceptor) and `AuthService`, where a client without
//! a certificate trades a SCRAM exchange for a session token.
//!
//! A caller is, in this order: the common name of its TLS certificate (`User:CN`); the
//! user of a valid session token (`authorization: Bearer TOKEN`); a node, by the cluster
//! secret (`User:node`); else anonymous, which is refused when TLS is on (without TLS the
//! authorizer decides what an anonymous caller may do). An invalid or expired token is
//! always refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rill_common::scram::{
    ClientFirst, ScramCredential, ScramMechanism, ServerExchange, SessionToken,
};
use rill_common::ErrorCode;
use rill_proto::v1::{AuthenticateRequest, AuthenticateResponse};
use rill_proto::NodeAuth;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::access::{Caller, ANONYMOUS, CLUSTER_NODE};
use crate::store::StateWatch;

/// The metadata key a session token travels in (`Bearer TOKEN`).
pub const AUTHORIZATION_KEY: &str = "authorization";

/// How long a session token is valid (clients renew theirs at half of it).
pub const SESSION_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// How long the server keeps a SCRAM exchange between its two calls.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most exchanges waiting for their second call; the oldest is dropped beyond it.
const MAX_PENDING_EXCHANGES: usize = 1024;

const INVALID_CREDENTIALS: &str = "invalid credentials";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn refused(message: &str) -> Status {
    rill_proto::error_status(ErrorCode::SaslAuthenticationFailed, message)
}

/// The interceptor in front of BrokerService, GroupService, TransactionService and
/// AdminService: puts the [`Caller`] on each request, or refuses it.
#[derive(Clone)]
pub struct Authentication {
    state: StateWatch,
    node_auth: NodeAuth,
    /// TLS is on: an anonymous caller is refused.
    required: bool,
}

impl Authentication {
    pub fn new(state: StateWatch, node_auth: NodeAuth, required: bool) -> Self {
        Self {
            state,
            node_auth,
            required,
        }
    }

    fn principal<T>(&self, request: &Request<T>) -> Result<String, Status> {
        if let Some(name) = rill_proto::tls::peer_common_name(request) {
            return Ok(format!("User:{name}"));
        }
        if let Some(value) = request.metadata().get(AUTHORIZATION_KEY) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(SessionToken::parse)
                .ok_or_else(|| refused("the authorization is not a Rill session token"))?;
            let state = self.state.borrow().clone();
            let valid = state
                .users
                .get(&token.user)
                .and_then(|cs| cs.iter().find(|c| c.mechanism == token.mechanism))
                .is_some_and(|c| token.is_valid(c, now_ms()));
            if !valid {
                return Err(refused(
                    "the session token is expired or no longer valid: authenticate again",
                ));
            }
            return Ok(format!("User:{}", token.user));
        }
        if self.node_auth.carries_secret(request) {
            return Ok(CLUSTER_NODE.to_string());
        }
        if self.required {
            metrics::counter!("rill_grpc_unauthenticated_requests_total").increment(1);
            return Err(refused(
                "authentication required: a client certificate (--tls-cert) or SCRAM \
                 credentials (--username, RILL_PASSWORD)",
            ));
        }
        Ok(ANONYMOUS.to_string())
    }
}

impl tonic::service::Interceptor for Authentication {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.principal(&request)?;
        request.extensions_mut().insert(Caller(principal.into()));
        Ok(request)
    }
}

struct Pending {
    exchange: ServerExchange,
    credential: ScramCredential,
    started: Instant,
}

/// `AuthService`: SCRAM over gRPC, answered with a session token.
pub struct AuthServiceImpl {
    state: StateWatch,
    /// `sasl.enabled.mechanisms` (the SCRAM ones).
    mechanisms: Vec<ScramMechanism>,
    pending: Mutex<(u64, HashMap<u64, Pending>)>,
}

impl AuthServiceImpl {
    pub fn new(state: StateWatch, mechanisms: Vec<ScramMechanism>) -> Self {
        Self {
            state,
            mechanisms,
            pending: Mutex::new((0, HashMap::new())),
        }
    }

    fn start(&self, mechanism: &str, message: &[u8]) -> Result<AuthenticateResponse, Status> {
        let mechanism = ScramMechanism::from_name(mechanism)
            .filter(|m| self.mechanisms.contains(m))
            .ok_or_else(|| {
                rill_proto::error_status(
                    ErrorCode::UnsupportedSaslMechanism,
                    &format!("{mechanism:?} is not enabled (sasl.enabled.mechanisms)"),
                )
            })?;
        let client = ClientFirst::parse(message).map_err(|e| refused(&e.to_string()))?;
        let credential = self
            .state
            .borrow()
            .users
            .get(&client.username)
            .and_then(|cs| cs.iter().find(|c| c.mechanism == mechanism))
            .cloned()
            .ok_or_else(|| audit_failure(mechanism, &client.username))?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (exchange, answer) = ServerExchange::start(&client, credential.clone(), &nonce);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (next_id, exchanges) = &mut *pending;
        exchanges.retain(|_, p| p.started.elapsed() < EXCHANGE_TIMEOUT);
        if exchanges.len() >= MAX_PENDING_EXCHANGES {
            if let Some(oldest) = exchanges
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(id, _)| *id)
            {
                exchanges.remove(&oldest);
            }
        }
        *next_id += 1;
        // Unguessable, so nobody finishes another client's exchange.
        let exchange_id = (*next_id << 32) | u64::from(rand_u32());
        exchanges.insert(
            exchange_id,
            Pending {
                exchange,
                credential,
                started: Instant::now(),
            },
        );
        Ok(AuthenticateResponse {
            message: answer.into(),
            exchange_id,
            ..Default::default()
        })
    }

    fn finish(&self, exchange_id: u64, message: &[u8]) -> Result<AuthenticateResponse, Status> {
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.1.remove(&exchange_id)
        }
        .filter(|p| p.started.elapsed() < EXCHANGE_TIMEOUT)
        .ok_or_else(|| {
            rill_proto::error_status(
                ErrorCode::IllegalSaslState,
                "no such exchange (it expired, or was finished): start again",
            )
        })?;
        let user = pending.exchange.username().to_string();
        let mechanism = pending.credential.mechanism;
        let answer = pending
            .exchange
            .finish(message)
            .map_err(|_| audit_failure(mechanism, &user))?;
        let expires_ms = now_ms() + SESSION_TOKEN_LIFETIME.as_millis() as u64;
        metrics::counter!("rill_grpc_authentications_total",
            "mechanism" => mechanism.name(), "result" => "ok")
        .increment(1);
        info!(target: "rill::audit", principal = %format!("User:{user}"), mechanism = mechanism.name(), "authenticated (gRPC)");
        Ok(AuthenticateResponse {
            message: answer.into(),
            exchange_id,
            token: SessionToken::issue(&user, &pending.credential, expires_ms),
            token_expires_ms: expires_ms,
        })
    }
}

fn rand_u32() -> u32 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn audit_failure(mechanism: ScramMechanism, user: &str) -> Status {
    warn!(target: "rill::audit", principal = %format!("User:{user}"), mechanism = mechanism.name(), "gRPC authentication failed");
    metrics::counter!("rill_grpc_authentications_total",
        "mechanism" => mechanism.name(), "result" => "failed")
    .increment(1);
    refused(INVALID_CREDENTIALS)
}

#[tonic::async_trait]
impl rill_proto::v1::auth_service_server::AuthService for AuthServiceImpl {
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        let answer = if request.exchange_id == 0 {
            self.start(&request.mechanism, &request.message)?
        } else {
            self.finish(request.exchange_id, &request.message)?
        };
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests;
