//! SaslHandshake and SaslAuthenticate: the connection's `Authentication` takes each
//! step; this edge builds the responses, writes the audit line and counts the outcome.

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use super::{code, Backends};
use crate::metrics;
use crate::sasl::{Authentication, Step};

pub(crate) fn sasl_handshake(
    auth: &mut Authentication,
    backends: &Backends,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let enabled = &backends.settings.sasl_mechanisms;
    let mechanisms = enabled
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let error_code = match auth.handshake(request.mechanism.as_str(), enabled) {
        Ok(()) => 0,
        Err(refused) => {
            warn!(target: "rill::audit", mechanism = %request.mechanism.as_str(),
                "SASL handshake refused: {}", refused.message);
            metrics::authentication(request.mechanism.as_str(), false);
            code(refused.code)
        }
    };
    SaslHandshakeResponse::default()
        .with_error_code(error_code)
        .with_mechanisms(mechanisms)
}

pub(crate) fn sasl_authenticate(
    auth: &mut Authentication,
    backends: &Backends,
    mechanism: &'static str,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let state = backends.metadata.state();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    match auth.authenticate(&request.auth_bytes, &state.users, &nonce) {
        Ok(Step::Continue(answer)) => {
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(answer))
        }
        Ok(Step::Done { user, answer }) => {
            let principal = format!("User:{user}");
            // Every later line of this connection names who it is.
            tracing::Span::current().record("principal", principal.as_str());
            info!(target: "rill::audit", %principal, mechanism, "authenticated");
            metrics::authentication(mechanism, true);
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(answer))
        }
        Err(refused) => {
            warn!(target: "rill::audit", user = ?refused.user, mechanism,
                "SASL authentication failed: {}", refused.message);
            metrics::authentication(mechanism, false);
            SaslAuthenticateResponse::default()
                .with_error_code(code(refused.code))
                .with_error_message(Some(StrBytes::from_string(refused.message)))
        }
    }
}
