//! Transaction values that the metadata log persists and the transaction coordinator
//! works on (KIP-98, with KIP-890's epoch bump at every end).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::group::{OffsetCommit, TopicPartition};

/// A transactional id's state, as Kafka's transaction coordinator names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction open (a producer id is assigned).
    Empty,
    /// Partitions or a group were added: records may be written.
    Ongoing,
    /// The producer asked to commit; the decision is durable, markers are being written.
    PrepareCommit,
    /// The producer asked to abort; markers are being written.
    PrepareAbort,
    /// The coordinator aborts on its own (a new producer fenced this one, or the
    /// transaction timed out); markers are being written.
    PrepareEpochFence,
    CompleteCommit,
    CompleteAbort,
    /// Forgotten (expired transactional id).
    Dead,
}

impl TxnState {
    /// Every state, in lifecycle order.
    pub const ALL: [TxnState; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::PrepareEpochFence,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::PrepareEpochFence => "PrepareEpochFence",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
        }
    }

    /// Markers are being written: the next transaction of this id must wait.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            Self::PrepareCommit | Self::PrepareAbort | Self::PrepareEpochFence
        )
    }
}

/// A producer id and the epoch that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// One transactional id as the metadata log holds it (`txn describe` shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub producer: ProducerIdAndEpoch,
    /// The producer id and epoch before the last bump: a retried EndTxn or
    /// InitProducerId of that producer is recognised.
    pub previous_producer: Option<ProducerIdAndEpoch>,
    pub state: TxnState,
    pub timeout_ms: u64,
    /// Wall-clock milliseconds: when the open transaction began, and of the last change.
    pub started_ms: Option<u64>,
    pub updated_ms: u64,
    pub partitions: BTreeSet<TopicPartition>,
    /// Groups added with AddOffsetsToTxn and the offsets sent to the transaction.
    pub offsets: BTreeMap<String, Vec<OffsetCommit>>,
    /// The producer id and epoch the markers being written carry (while preparing): the
    /// bumped epoch, or the old id at the last epoch when the id rotated.
    pub marker_producer: Option<ProducerIdAndEpoch>,
}

/// What a consumer's fetch may read (Kafka's `isolation.level`, plus Rill's opt-in
/// `read_latest`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IsolationLevel {
    /// Up to the last stable offset: committed transactions only, aborted ones skipped.
    #[default]
    ReadCommitted,
    /// Up to the high watermark, open and aborted transactions included.
    ReadUncommitted,
    /// From the leader up to its log end: the lowest latency, but what is read may later
    /// be truncated away (it is not on a quorum of replicas yet).
    ReadLatest,
}

impl IsolationLevel {
    /// Kafka's wire value (0 read_uncommitted, 1 read_committed); Kafka has no
    /// read_latest.
    pub fn from_kafka(value: i8) -> Self {
        if value == 1 {
            Self::ReadCommitted
        } else {
            Self::ReadUncommitted
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadCommitted => "read_committed",
            Self::ReadUncommitted => "read_uncommitted",
            Self::ReadLatest => "read_latest",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::ReadCommitted, Self::ReadUncommitted, Self::ReadLatest]
            .into_iter()
            .find(|l| l.as_str() == name)
    }
}

/// One transaction marker for one partition (Kafka's WritableTxnMarker): the leader
/// appends a COMMIT or ABORT control batch stamped with the producer's id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}
