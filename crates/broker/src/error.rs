use rill_common::record::RecordError;
use rill_common::ErrorCode;

/// Everything that can go wrong in the broker crate.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{code}: {0}", code = record_error_code(.0))]
    Record(#[from] RecordError),
    #[error("UNKNOWN_SERVER_ERROR: stored batch at offset {offset} is corrupt: {reason}")]
    CorruptStoredBatch { offset: u64, reason: String },
    #[error("OFFSET_OUT_OF_RANGE: offset {offset} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: u64,
        log_start: u64,
        log_end: u64,
    },
    #[error("UNKNOWN_TOPIC_OR_PARTITION: {0}")]
    UnknownTopicOrPartition(String),
    #[error("NOT_LEADER_OR_FOLLOWER: {0}")]
    NotLeader(String),
    #[error("MESSAGE_TOO_LARGE: batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error(
        "FENCED_LEADER_EPOCH: request epoch {request} is older than the leader epoch {current}"
    )]
    FencedLeaderEpoch { request: i32, current: i32 },
    #[error(
        "UNKNOWN_LEADER_EPOCH: request epoch {request} is newer than the leader epoch {current}"
    )]
    UnknownLeaderEpoch { request: i32, current: i32 },
    #[error("NOT_ENOUGH_REPLICAS: {0}")]
    NotEnoughReplicas(String),
    #[error("INVALID_REQUEST: {0}")]
    InvalidRequest(String),
    /// A well-formed batch a producer may not send (a control batch, several batches).
    #[error("INVALID_RECORD: {0}")]
    InvalidRecord(String),
    #[error("INVALID_TIMESTAMP: {0}")]
    InvalidTimestamp(String),
    #[error("REQUEST_TIMED_OUT: {0}")]
    Timeout(String),
    /// The partition store failed (an I/O error, a full disk): what the write added may
    /// be in memory and reach followers, so its outcome is unknown; retriable elsewhere.
    #[error("KAFKA_STORAGE_ERROR: {0}")]
    Storage(String),
    #[error("OUT_OF_ORDER_SEQUENCE: {0}")]
    OutOfOrderSequence(String),
    #[error("INVALID_PRODUCER_EPOCH: {0}")]
    InvalidProducerEpoch(String),
    #[error("UNKNOWN_PRODUCER_ID: {0}")]
    UnknownProducerId(String),
    /// A transactional write the transaction coordinator (or this leader's view of the
    /// transaction) does not allow: INVALID_TXN_STATE, PRODUCER_FENCED, ...
    #[error("{code}: {message}")]
    Transaction { code: ErrorCode, message: String },
    #[error("UNKNOWN_SERVER_ERROR: refusing to truncate to {target}, below the high watermark {high_watermark}")]
    TruncationRefused { target: u64, high_watermark: u64 },
}

fn record_error_code(e: &RecordError) -> ErrorCode {
    BrokerError::Record(e.clone()).code()
}

impl BrokerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Record(RecordError::UnsupportedCompression(_)) => {
                ErrorCode::UnsupportedCompressionType
            }
            Self::Record(RecordError::UnsupportedMagic(_)) => ErrorCode::InvalidRecord,
            Self::Record(_) => ErrorCode::CorruptMessage,
            Self::InvalidRecord(_) => ErrorCode::InvalidRecord,
            Self::InvalidTimestamp(_) => ErrorCode::InvalidTimestamp,
            Self::OutOfOrderSequence(_) => ErrorCode::OutOfOrderSequence,
            Self::InvalidProducerEpoch(_) => ErrorCode::InvalidProducerEpoch,
            Self::UnknownProducerId(_) => ErrorCode::UnknownProducerId,
            Self::Transaction { code, .. } => *code,
            Self::Storage(_) => ErrorCode::KafkaStorageError,
            Self::CorruptStoredBatch { .. } | Self::TruncationRefused { .. } => {
                ErrorCode::UnknownServerError
            }
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Self::UnknownTopicOrPartition(_) => ErrorCode::UnknownTopicOrPartition,
            Self::NotLeader(_) => ErrorCode::NotLeaderOrFollower,
            Self::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            Self::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            Self::NotEnoughReplicas(_) => ErrorCode::NotEnoughReplicas,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Timeout(_) => ErrorCode::RequestTimedOut,
        }
    }

    /// The message without the leading code.
    pub fn message(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.code());
        text.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(text)
    }
}

impl From<sled::Error> for BrokerError {
    fn from(e: sled::Error) -> Self {
        Self::Storage(e.to_string())
    }
}
