use rill_common::ErrorCode;

/// Everything a group request can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CoordinatorError {
    #[error("{code}: {message}")]
    Rejected { code: ErrorCode, message: String },
}

impl CoordinatorError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Rejected {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected { code, .. } => *code,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Rejected { message, .. } => message,
        }
    }
}

impl From<ErrorCode> for CoordinatorError {
    fn from(code: ErrorCode) -> Self {
        let message = match code {
            ErrorCode::NotCoordinator => "this node is not the group coordinator",
            ErrorCode::UnknownMemberId => "the group does not know this member",
            ErrorCode::IllegalGeneration => "the generation is not the group's current one",
            ErrorCode::RebalanceInProgress => "the group is rebalancing; rejoin",
            ErrorCode::InvalidSessionTimeout => {
                "the session timeout is outside the coordinator's bounds"
            }
            ErrorCode::InconsistentGroupProtocol => "no protocol in common with the group",
            ErrorCode::FencedInstanceId => "a newer member with this group.instance.id exists",
            ErrorCode::InvalidAssignment => {
                "the assignment names a non-member or gives a partition to two members"
            }
            _ => "group request refused",
        };
        Self::new(code, message)
    }
}
