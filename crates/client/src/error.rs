use rill_common::ErrorCode;

#[derive(Debug, thiserror::Error)]
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

    pub(crate) fn from_status(status: &tonic::Status) -> Self {
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
/// node says it cannot serve the call right now.
pub(crate) fn is_transport_failure(status: &tonic::Status) -> bool {
    rill_proto::status_error_code(status).is_none()
        && matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        )
}
