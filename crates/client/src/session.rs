//! Authenticating to a cluster over gRPC with SCRAM credentials (a user of `rill user
//! create`) instead of a client certificate. The first call a client makes runs a SCRAM
//! exchange with AuthService on the node it calls; the session token it gets is valid
//! on every node of the cluster and goes on every call (`authorization: Bearer TOKEN`).
//! It is renewed halfway through its life, on the next call after that. The password
//! stays in this process: the node sees a proof, never the password.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use rill_common::scram::{ScramClient, ScramMechanism};
use rill_common::ErrorCode;
use rill_proto::v1::auth_service_client::AuthServiceClient;
use rill_proto::v1::AuthenticateRequest;
use tonic::body::Body;
use tonic::Status;

/// A user's name and password, and the SCRAM mechanism to prove it with.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub mechanism: ScramMechanism,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// The credentials and the session token they got, shared by every channel of a client.
pub(crate) struct Session {
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<Token>>,
}

struct Token {
    header: HeaderValue,
    renew_at: Instant,
}

fn refused(message: impl std::fmt::Display) -> Status {
    rill_proto::error_status(ErrorCode::SaslAuthenticationFailed, &message.to_string())
}

impl Session {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The `authorization` header: the token in hand, or a new one from `node`.
    async fn header(&self, node: &tonic::transport::Channel) -> Result<HeaderValue, Status> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.header.clone());
        }
        let fresh = self.authenticate(node.clone()).await?;
        let header = fresh.header.clone();
        *token = Some(fresh);
        Ok(header)
    }

    async fn authenticate(&self, node: tonic::transport::Channel) -> Result<Token, Status> {
        let Credentials {
            username,
            password,
            mechanism,
        } = &self.credentials;
        let mut auth = AuthServiceClient::new(node);
        let nonce = format!("{:032x}", rand::random::<u128>());
        let scram = ScramClient::new(*mechanism, username, &nonce);
        let first = auth
            .authenticate(AuthenticateRequest {
                mechanism: mechanism.name().to_string(),
                message: scram.client_first().into(),
                exchange_id: 0,
            })
            .await?
            .into_inner();
        let last = scram
            .respond(&first.message, password.as_bytes())
            .map_err(refused)?;
        let done = auth
            .authenticate(AuthenticateRequest {
                mechanism: mechanism.name().to_string(),
                message: last.message.clone().into(),
                exchange_id: first.exchange_id,
            })
            .await?
            .into_inner();
        // The node, too, proves it knows the credential.
        last.verify_server(&done.message)
            .map_err(|_| refused("the server's SCRAM signature is wrong"))?;
        let header = HeaderValue::try_from(format!("Bearer {}", done.token))
            .map_err(|_| refused("the session token is not a header value"))?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let lifetime = Duration::from_millis(done.token_expires_ms.saturating_sub(now_ms));
        Ok(Token {
            header,
            renew_at: Instant::now() + lifetime / 2,
        })
    }
}

/// A channel to one node: tonic's, plus the session token on every call when the client
/// authenticates with credentials.
#[derive(Clone)]
pub struct Channel {
    inner: tonic::transport::Channel,
    session: Option<Arc<Session>>,
}

impl Channel {
    pub(crate) fn new(inner: tonic::transport::Channel, session: Option<Arc<Session>>) -> Self {
        Self { inner, session }
    }
}

impl tower::Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The channel polled ready is the one that must take the call.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let Some(session) = self.session.clone() else {
            let mut ready = ready;
            return Box::pin(tower::Service::call(&mut ready, request));
        };
        let node = self.inner.clone();
        Box::pin(async move {
            let mut ready = ready;
            match session.header(&node).await {
                Ok(header) => {
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, header);
                    tower::Service::call(&mut ready, request).await
                }
                // The refusal is the call's answer, as if the node had given it.
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
