use rill_common::ErrorCode;

/// Everything a group request can fail with; mapped to a gRPC status at the edge.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CoordinatorError {
    #[error("{code}: {message}")]
    Rejected { code: ErrorCode, message: String },
    /// KIP-394: a new member must join again with the id it is given here.
    #[error("MEMBER_ID_REQUIRED: join again with member id {member_id}")]
    MemberIdRequired { member_id: String },
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
            Self::MemberIdRequired { .. } => ErrorCode::MemberIdRequired,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Rejected { message, .. } => message,
            Self::MemberIdRequired { .. } => "join again with the member id given",
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
