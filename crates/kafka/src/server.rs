//! The accept loop and one task per connection. A connection handles one request at a
//! time, as Kafka does: appends happen and responses go out in request order. Anything
//! malformed closes that connection, and only that one.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::frame::{encode_response, parse_header, read_frame, FrameError, RequestHeader};
use crate::handlers::{self, Backends, Context, Reply};
use crate::sasl::Authentication;
use crate::versions::{self, Support};
use crate::{metrics, walk};

/// Open connections per listener beyond which new ones wait to be accepted.
const MAX_CONNECTIONS: usize = 4096;

/// How long a client has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves Kafka clients on `socket` (the listener named `listener`) until `cancel`.
pub async fn serve(
    listener: String,
    socket: TcpListener,
    backends: Arc<Backends>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let listener: Arc<str> = listener.into();
    let tls = backends
        .settings
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = slots.clone().acquire_owned() => p,
        };
        let Ok(permit) = permit else {
            return;
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = socket.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(listener = %listener, "accepting a Kafka connection failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let span = info_span!("kafka_connection", listener = %listener, %peer,
            principal = tracing::field::Empty);
        let backends = backends.clone();
        let cancel = cancel.clone();
        let listener = listener.clone();
        let tls = tls.clone();
        tokio::spawn(
            async move {
                metrics::connection_opened(&listener);
                let served = match tls {
                    None => connection(stream, &listener, &backends, &cancel, None).await,
                    Some(tls) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                        {
                            Ok(Ok(stream)) => {
                                // The common name of a client certificate (verified
                                // against the cluster's CA) names the user.
                                let user = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|chain| chain.first())
                                    .and_then(|cert| {
                                        rill_metadata::access::certificate_principal(cert)
                                    })
                                    .and_then(|p| p.strip_prefix("User:").map(str::to_string));
                                connection(stream, &listener, &backends, &cancel, user).await
                            }
                            Ok(Err(e)) => Err(Closed::Tls(e.to_string())),
                            Err(_) => Err(Closed::Tls("handshake timed out".into())),
                        }
                    }
                };
                match served {
                    Err(Closed::Tls(why)) => {
                        // A plaintext client, or a certificate of another CA.
                        warn!(target: "rill::audit", "TLS handshake failed: {why}");
                        metrics::tls_handshake_failed();
                    }
                    Err(e) => debug!("connection closed: {e}"),
                    Ok(()) => {}
                }
                metrics::connection_closed(&listener);
                drop(permit);
            }
            .instrument(span),
        );
    }
}

#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{key:?} v{version} is not served")]
    Unsupported { key: ApiKey, version: i16 },
    #[error("{key:?} v{version}: {reason}")]
    Malformed {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{0}")]
    ByHandler(String),
    #[error("{0:?} before SASL authentication")]
    Unauthenticated(ApiKey),
    #[error("TLS: {0}")]
    Tls(String),
}

async fn connection(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    listener: &str,
    backends: &Backends,
    cancel: &CancellationToken,
    certificate_user: Option<String>,
) -> Result<(), Closed> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    let max_bytes = backends.settings.max_request_bytes;
    if let Some(user) = &certificate_user {
        tracing::Span::current().record("principal", format!("User:{user}"));
    }
    let mut auth = Authentication::new(&backends.settings.sasl_mechanisms, certificate_user);
    // The mechanism the handshake picked (for the audit lines and metrics).
    let mut mechanism = "";
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            f = read_frame(&mut reader, max_bytes) => f,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => {
                metrics::refused_frame(match e {
                    FrameError::Size(_) => "size",
                    FrameError::Truncated | FrameError::Io(_) => "truncated",
                    _ => "header",
                });
                return Err(e.into());
            }
        };
        let (header, body) = parse_header(&frame).inspect_err(|e| {
            metrics::refused_frame(match e {
                FrameError::UnknownApi(_) => "unknown_api",
                _ => "header",
            });
        })?;
        let started = Instant::now();
        let answered = answer(&header, body, listener, backends, &mut auth, &mut mechanism).await;
        if let Err(e) = &answered {
            debug!(client_id = ?header.client_id, correlation_id = header.correlation_id,
                frame = ?&frame[..frame.len().min(96)], "closing: {e}");
        }
        let Some(response) = answered? else {
            continue;
        };
        writer
            .write_all(&response)
            .await
            .map_err(FrameError::from)?;
        if let Ok(key) = ApiKey::try_from(header.api_key) {
            metrics::request(key, header.api_version, started.elapsed());
        }
    }
}

/// The response frame for one request (`None`: acks=0 produce).
async fn answer(
    header: &RequestHeader,
    mut body: bytes::Bytes,
    listener: &str,
    backends: &Backends,
    auth: &mut Authentication,
    mechanism: &mut &'static str,
) -> Result<Option<bytes::Bytes>, Closed> {
    let version = header.api_version;
    let key = ApiKey::try_from(header.api_key)
        .map_err(|()| Closed::Frame(FrameError::UnknownApi(header.api_key)))?;
    if !auth.admits(key) {
        // Kafka closes a connection that skips or fails authentication.
        warn!(target: "rill::audit", api = ?key, client_id = ?header.client_id,
            "request refused: the connection has not authenticated");
        metrics::unauthenticated_request(key);
        return Err(Closed::Unauthenticated(key));
    }
    match versions::support(key, version) {
        Support::Handled => {}
        Support::Unsupported if key == ApiKey::ApiVersions => {
            // Kafka answers an ApiVersions it does not know with a v0 body: the error
            // and the ranges, so the client can pick a version and ask again.
            let response = ResponseKind::ApiVersions(versions::api_versions(handlers::code(
                rill_common::ErrorCode::UnsupportedVersion,
            )));
            return Ok(Some(encode_response(header, key, &response, 0)?));
        }
        Support::Unsupported | Support::Refused => {
            metrics::refused_frame("version");
            return Err(Closed::Unsupported { key, version });
        }
    }
    let layout = walk::message(header.api_key).ok_or(Closed::Unsupported { key, version })?;
    walk::walk(layout, version, &body).map_err(|e| {
        metrics::refused_frame("walk");
        Closed::Malformed {
            key,
            version,
            reason: e.to_string(),
        }
    })?;
    let request = RequestKind::decode(key, &mut body, version).map_err(|e| {
        metrics::refused_frame("decode");
        Closed::Malformed {
            key,
            version,
            reason: e.to_string(),
        }
    })?;
    let response = match request {
        RequestKind::SaslHandshake(r) => {
            *mechanism = crate::sasl::SaslMechanism::from_name(r.mechanism.as_str())
                .map_or("unknown", crate::sasl::SaslMechanism::name);
            ResponseKind::SaslHandshake(handlers::sasl::sasl_handshake(auth, backends, r))
        }
        RequestKind::SaslAuthenticate(r) => ResponseKind::SaslAuthenticate(
            handlers::sasl::sasl_authenticate(auth, backends, mechanism, r),
        ),
        request => {
            let principal = auth.principal();
            return serve_request(header, key, request, listener, backends, &principal).await;
        }
    };
    Ok(Some(encode_response(header, key, &response, version)?))
}

/// A request of an authenticated (or open) connection, through the handlers.
async fn serve_request(
    header: &RequestHeader,
    key: ApiKey,
    request: RequestKind,
    listener: &str,
    backends: &Backends,
    principal: &str,
) -> Result<Option<bytes::Bytes>, Closed> {
    let version = header.api_version;
    let ctx = Context {
        backends,
        principal,
        listener,
        version,
        client_id: header.client_id.as_deref().unwrap_or(""),
    };
    match handlers::handle(&ctx, request).await {
        Reply::Response(response) => Ok(Some(encode_response(header, key, &response, version)?)),
        Reply::Nothing => Ok(None),
        Reply::Close(why) => Err(Closed::ByHandler(why)),
    }
}
