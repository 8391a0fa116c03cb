use std::fmt;
use std::str::FromStr;

/// Declares `ErrorCode` from one table: each variant with its stable string (the
/// enum, `ALL` and `as_str` cannot drift apart).
macro_rules! error_codes {
    ($($variant:ident => $name:literal,)*) => {
        /// Stable error codes, named like Kafka's. They travel in gRPC status metadata and
        /// in per-item results, and are what the CLI prints; never rename a variant's string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

error_codes! {
    UnknownServerError => "UNKNOWN_SERVER_ERROR",
    NotController => "NOT_CONTROLLER",
    NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
    NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
    UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
    OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
    FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
    UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
    IllegalGeneration => "ILLEGAL_GENERATION",
    UnknownMemberId => "UNKNOWN_MEMBER_ID",
    RebalanceInProgress => "REBALANCE_IN_PROGRESS",
    MessageTooLarge => "MESSAGE_TOO_LARGE",
    CorruptMessage => "CORRUPT_MESSAGE",
    InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
    TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
    InvalidPartitions => "INVALID_PARTITIONS",
    InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
    InvalidConfig => "INVALID_CONFIG",
    InvalidRequest => "INVALID_REQUEST",
    OutOfOrderSequence => "OUT_OF_ORDER_SEQUENCE",
    DuplicateSequence => "DUPLICATE_SEQUENCE",
    StaleBrokerEpoch => "STALE_BROKER_EPOCH",
    BrokerNotAvailable => "BROKER_NOT_AVAILABLE",
    RequestTimedOut => "REQUEST_TIMED_OUT",
    InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
    NotCoordinator => "NOT_COORDINATOR",
    CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
    InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
    InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
    FencedInstanceId => "FENCED_INSTANCE_ID",
    InvalidGroupId => "INVALID_GROUP_ID",
    GroupIdNotFound => "GROUP_ID_NOT_FOUND",
    NonEmptyGroup => "NON_EMPTY_GROUP",
    InvalidAssignment => "INVALID_ASSIGNMENT",
    InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
    UnknownProducerId => "UNKNOWN_PRODUCER_ID",
    ElectionNotNeeded => "ELECTION_NOT_NEEDED",
    EligibleLeadersNotAvailable => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
}

impl ErrorCode {
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
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(code));
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
