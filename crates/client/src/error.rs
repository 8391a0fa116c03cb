use rill_common::ErrorCode;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Rill error code.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// No node in the bootstrap list could be reached.
    #[error("BROKER_NOT_AVAILABLE: no node reachable at {addrs}: {last_error}")]
    Unreachable { addrs: String, last_error: String },
    #[error("INVALID_REQUEST: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Server { code, .. } => *code,
            Self::Unreachable { .. } => ErrorCode::BrokerNotAvailable,
            Self::InvalidArgument(_) => ErrorCode::InvalidRequest,
        }
    }

    /// Whether the same request may succeed if sent again (after a metadata refresh).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Server { code, .. } => code.is_retriable(),
            Self::Unreachable { .. } => true,
            Self::InvalidArgument(_) => false,
        }
    }

    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        if is_transport_failure(status) {
            return Self::Unreachable {
                addrs: String::new(),
                last_error: status.message().to_string(),
            };
        }
        let code = rill_proto::status_error_code(status).unwrap_or(ErrorCode::UnknownServerError);
        let prefix = format!("{code}: ");
        let message = status.message();
        Self::Server {
            code,
            message: message.strip_prefix(&prefix).unwrap_or(message).to_string(),
        }
    }

    pub(crate) fn from_item(code: &str, message: &str) -> Self {
        Self::Server {
            code: code.parse().unwrap_or(ErrorCode::UnknownServerError),
            message: message.to_string(),
        }
    }
}

/// Whether a failed call may be sent to another node: the transport failed, or the
/// node says it cannot serve the call right now. An HTTP/2 protocol error without a Rill
/// code is the transport too (a plaintext client talking to a TLS node gets one).
pub(crate) fn is_transport_failure(status: &tonic::Status) -> bool {
    rill_proto::status_error_code(status).is_none()
        && (matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ) || status.message().starts_with("h2 protocol error"))
}

/// A failed call's message with its innermost cause: a TLS refusal ("invalid peer
/// certificate: UnknownIssuer", "certificate required") is only said down there.
pub(crate) fn with_root_cause(status: &tonic::Status) -> String {
    let mut cause: &dyn std::error::Error = status;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let root = cause.to_string();
    let mut text = status.message().to_string();
    if root != text {
        text = format!("{text}: {root}");
    }
    if text.starts_with("h2 protocol error") {
        text.push_str(" (does the node use TLS? then pass --tls-ca)");
    }
    text
}
