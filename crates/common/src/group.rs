//! Consumer-group values that the metadata log persists and the coordinator works on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A topic name and a partition number.
pub type TopicPartition = (String, u32);

/// The protocol type of Kafka's consumers (and of Rill's): members' metadata and
/// assignments are the consumer protocol's subscription and assignment.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// One partition's offset in a commit (a member's, an admin's, or a transaction's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub metadata: String,
    /// The leader epoch of the record before `offset` as the committer saw it (Kafka
    /// clients use it to detect truncation, KIP-320); `None` if not given.
    #[serde(default)]
    pub leader_epoch: Option<i32>,
}

/// What a member asks for in one protocol: the topics it subscribes to, and (for the
/// sticky assignors) the partitions it owns now and the generation it owned them in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Vec<TopicPartition>,
    pub generation: i32,
}

/// One assignment protocol a member supports (an assignor name), with its subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    pub subscription: Subscription,
    /// The protocol metadata as a Kafka client encoded it (its own user data and
    /// version included), relayed to the leader as it came; `None` from gRPC members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<u8>>,
}

/// A member's partitions, per topic in ascending order.
pub type Assignment = BTreeMap<String, Vec<u32>>;

/// What a member gets from SyncGroup: its partitions, and the bytes a Kafka leader sent
/// for it (relayed as they came, user data included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAssignment {
    pub partitions: Assignment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
}

/// A member as `group describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<Protocol>,
    pub assignment: Assignment,
    /// The assignment as a Kafka leader encoded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_bytes: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// A group as it is persisted and described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberDescription>,
}
