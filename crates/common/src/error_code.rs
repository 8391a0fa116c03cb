use std::fmt;
use std::str::FromStr;

/// Stable error codes, named like Kafka's. They travel in gRPC status metadata and in
/// per-item results, and are what the CLI prints; never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    UnknownServerError,
    NotController,
    NotLeaderOrFollower,
    NotEnoughReplicas,
    UnknownTopicOrPartition,
    OffsetOutOfRange,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    IllegalGeneration,
    UnknownMemberId,
    RebalanceInProgress,
    MessageTooLarge,
    CorruptMessage,
    InvalidTopicException,
    TopicAlreadyExists,
    InvalidPartitions,
    InvalidReplicationFactor,
    InvalidConfig,
    InvalidRequest,
    OutOfOrderSequence,
    DuplicateSequence,
    StaleBrokerEpoch,
    BrokerNotAvailable,
    RequestTimedOut,
    InvalidUpdateVersion,
    NotCoordinator,
    CoordinatorNotAvailable,
    InvalidSessionTimeout,
    InconsistentGroupProtocol,
    FencedInstanceId,
    InvalidGroupId,
    GroupIdNotFound,
    NonEmptyGroup,
    InvalidAssignment,
    InvalidProducerEpoch,
    UnknownProducerId,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 36] = [
        Self::UnknownServerError,
        Self::NotController,
        Self::NotLeaderOrFollower,
        Self::NotEnoughReplicas,
        Self::UnknownTopicOrPartition,
        Self::OffsetOutOfRange,
        Self::FencedLeaderEpoch,
        Self::UnknownLeaderEpoch,
        Self::IllegalGeneration,
        Self::UnknownMemberId,
        Self::RebalanceInProgress,
        Self::MessageTooLarge,
        Self::CorruptMessage,
        Self::InvalidTopicException,
        Self::TopicAlreadyExists,
        Self::InvalidPartitions,
        Self::InvalidReplicationFactor,
        Self::InvalidConfig,
        Self::InvalidRequest,
        Self::OutOfOrderSequence,
        Self::DuplicateSequence,
        Self::StaleBrokerEpoch,
        Self::BrokerNotAvailable,
        Self::RequestTimedOut,
        Self::InvalidUpdateVersion,
        Self::NotCoordinator,
        Self::CoordinatorNotAvailable,
        Self::InvalidSessionTimeout,
        Self::InconsistentGroupProtocol,
        Self::FencedInstanceId,
        Self::InvalidGroupId,
        Self::GroupIdNotFound,
        Self::NonEmptyGroup,
        Self::InvalidAssignment,
        Self::InvalidProducerEpoch,
        Self::UnknownProducerId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            Self::NotController => "NOT_CONTROLLER",
            Self::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            Self::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            Self::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            Self::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            Self::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            Self::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            Self::IllegalGeneration => "ILLEGAL_GENERATION",
            Self::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            Self::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::CorruptMessage => "CORRUPT_MESSAGE",
            Self::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            Self::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            Self::InvalidPartitions => "INVALID_PARTITIONS",
            Self::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            Self::InvalidConfig => "INVALID_CONFIG",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::OutOfOrderSequence => "OUT_OF_ORDER_SEQUENCE",
            Self::DuplicateSequence => "DUPLICATE_SEQUENCE",
            Self::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            Self::BrokerNotAvailable => "BROKER_NOT_AVAILABLE",
            Self::RequestTimedOut => "REQUEST_TIMED_OUT",
            Self::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            Self::NotCoordinator => "NOT_COORDINATOR",
            Self::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            Self::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            Self::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            Self::FencedInstanceId => "FENCED_INSTANCE_ID",
            Self::InvalidGroupId => "INVALID_GROUP_ID",
            Self::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            Self::NonEmptyGroup => "NON_EMPTY_GROUP",
            Self::InvalidAssignment => "INVALID_ASSIGNMENT",
            Self::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            Self::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
        }
    }

    /// Whether a client may retry the same request (possibly after refreshing metadata).
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            Self::NotController
                | Self::NotLeaderOrFollower
                | Self::NotEnoughReplicas
                | Self::UnknownLeaderEpoch
                | Self::RebalanceInProgress
                | Self::BrokerNotAvailable
                | Self::RequestTimedOut
                | Self::NotCoordinator
                | Self::CoordinatorNotAvailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the known error codes.
#[derive(Debug, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(code));
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
