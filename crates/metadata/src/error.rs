use rill_common::{ErrorCode, NodeId};
use serde::{Deserialize, Serialize};

/// Everything that can go wrong in the metadata crate.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum MetadataError {
    /// The request is invalid or conflicts with the current metadata.
    #[error("{code}: {message}")]
    Rejected { code: ErrorCode, message: String },
    /// This node is not the active controller (and could not forward).
    #[error("NOT_CONTROLLER: this node is not the active controller (leader hint: {leader:?})")]
    NotController { leader: Option<(NodeId, String)> },
    /// No controller could be reached before the deadline: no quorum.
    #[error("NOT_CONTROLLER: no metadata quorum reachable: {0}")]
    NoQuorum(String),
    #[error("UNKNOWN_SERVER_ERROR: storage: {0}")]
    Storage(String),
    #[error("UNKNOWN_SERVER_ERROR: raft: {0}")]
    Raft(String),
    #[error("UNKNOWN_SERVER_ERROR: encoding: {0}")]
    Encoding(String),
}

impl MetadataError {
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Rejected {
            code,
            message: message.into(),
        }
    }

    /// The stable code shown to users and clients.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected { code, .. } => *code,
            Self::NotController { .. } | Self::NoQuorum(_) => ErrorCode::NotController,
            Self::Storage(_) | Self::Raft(_) | Self::Encoding(_) => ErrorCode::UnknownServerError,
        }
    }

    /// Whether the message says what to do and carries no server fault.
    pub fn message(&self) -> String {
        match self {
            Self::Rejected { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl From<sled::Error> for MetadataError {
    fn from(e: sled::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for MetadataError {
    fn from(e: serde_json::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}
