use std::fmt;
use std::str::FromStr;

/// Declares `ErrorCode` from one table: each variant with its stable string and its
/// Kafka protocol number (the enum, `ALL`, `as_str` and `kafka_code` cannot drift apart).
macro_rules! error_codes {
    ($($variant:ident => $name:literal, $kafka:literal,)*) => {
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

            /// The number Kafka clients know this error by (-1, UNKNOWN_SERVER_ERROR, for
            /// the codes Kafka has no number for).
            pub fn kafka_code(self) -> i16 {
                match self {
                    $(Self::$variant => $kafka,)*
                }
            }
        }
    };
}

error_codes! {
    UnknownServerError => "UNKNOWN_SERVER_ERROR", -1,
    NotController => "NOT_CONTROLLER", 41,
    NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER", 6,
    NotEnoughReplicas => "NOT_ENOUGH_REPLICAS", 19,
    UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION", 3,
    OffsetOutOfRange => "OFFSET_OUT_OF_RANGE", 1,
    FencedLeaderEpoch => "FENCED_LEADER_EPOCH", 74,
    UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH", 75,
    IllegalGeneration => "ILLEGAL_GENERATION", 22,
    UnknownMemberId => "UNKNOWN_MEMBER_ID", 25,
    RebalanceInProgress => "REBALANCE_IN_PROGRESS", 27,
    MessageTooLarge => "MESSAGE_TOO_LARGE", 10,
    CorruptMessage => "CORRUPT_MESSAGE", 2,
    InvalidTopicException => "INVALID_TOPIC_EXCEPTION", 17,
    TopicAlreadyExists => "TOPIC_ALREADY_EXISTS", 36,
    InvalidPartitions => "INVALID_PARTITIONS", 37,
    InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR", 38,
    InvalidConfig => "INVALID_CONFIG", 40,
    InvalidRequest => "INVALID_REQUEST", 42,
    OutOfOrderSequence => "OUT_OF_ORDER_SEQUENCE", 45,
    DuplicateSequence => "DUPLICATE_SEQUENCE", 46,
    StaleBrokerEpoch => "STALE_BROKER_EPOCH", 77,
    BrokerNotAvailable => "BROKER_NOT_AVAILABLE", 8,
    RequestTimedOut => "REQUEST_TIMED_OUT", 7,
    InvalidUpdateVersion => "INVALID_UPDATE_VERSION", 95,
    NotCoordinator => "NOT_COORDINATOR", 16,
    CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE", 15,
    InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT", 26,
    InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL", 23,
    FencedInstanceId => "FENCED_INSTANCE_ID", 82,
    InvalidGroupId => "INVALID_GROUP_ID", 24,
    GroupIdNotFound => "GROUP_ID_NOT_FOUND", 69,
    NonEmptyGroup => "NON_EMPTY_GROUP", 68,
    GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC", 86,
    InvalidAssignment => "INVALID_ASSIGNMENT", -1,
    InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH", 47,
    InvalidTxnState => "INVALID_TXN_STATE", 48,
    InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING", 49,
    InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT", 50,
    ConcurrentTransactions => "CONCURRENT_TRANSACTIONS", 51,
    UnstableOffsetCommit => "UNSTABLE_OFFSET_COMMIT", 88,
    TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND", 105,
    ProducerFenced => "PRODUCER_FENCED", 90,
    UnknownProducerId => "UNKNOWN_PRODUCER_ID", 59,
    ElectionNotNeeded => "ELECTION_NOT_NEEDED", 84,
    EligibleLeadersNotAvailable => "ELIGIBLE_LEADERS_NOT_AVAILABLE", 83,
    LeaderNotAvailable => "LEADER_NOT_AVAILABLE", 5,
    UnsupportedVersion => "UNSUPPORTED_VERSION", 35,
    InvalidRequiredAcks => "INVALID_REQUIRED_ACKS", 21,
    InvalidRecord => "INVALID_RECORD", 87,
    InvalidTimestamp => "INVALID_TIMESTAMP", 32,
    UnsupportedCompressionType => "UNSUPPORTED_COMPRESSION_TYPE", 76,
    PolicyViolation => "POLICY_VIOLATION", 44,
    InvalidReplicaAssignment => "INVALID_REPLICA_ASSIGNMENT", 39,
    NoReassignmentInProgress => "NO_REASSIGNMENT_IN_PROGRESS", 85,
    KafkaStorageError => "KAFKA_STORAGE_ERROR", 56,
    UnknownTopicId => "UNKNOWN_TOPIC_ID", 100,
    OffsetNotAvailable => "OFFSET_NOT_AVAILABLE", 78,
    PreferredLeaderNotAvailable => "PREFERRED_LEADER_NOT_AVAILABLE", 80,
    InvalidFetchSize => "INVALID_FETCH_SIZE", 4,
    MemberIdRequired => "MEMBER_ID_REQUIRED", 79,
    ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED", 31,
    TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED", 29,
    GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED", 30,
    TransactionalIdAuthorizationFailed => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 53,
    SaslAuthenticationFailed => "SASL_AUTHENTICATION_FAILED", 58,
    UnsupportedSaslMechanism => "UNSUPPORTED_SASL_MECHANISM", 33,
    IllegalSaslState => "ILLEGAL_SASL_STATE", 34,
    ResourceNotFound => "RESOURCE_NOT_FOUND", 91,
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
                | Self::KafkaStorageError
                | Self::NotCoordinator
                | Self::CoordinatorNotAvailable
                | Self::LeaderNotAvailable
                | Self::OffsetNotAvailable
                | Self::UnknownTopicId
                | Self::ConcurrentTransactions
                | Self::UnstableOffsetCommit
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
    fn kafka_numbers_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            let n = code.kafka_code();
            assert!(n == -1 || seen.insert(n), "{code} reuses Kafka error {n}");
        }
        assert_eq!(ErrorCode::NotLeaderOrFollower.kafka_code(), 6);
    }

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(code));
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
