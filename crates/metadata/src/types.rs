use std::collections::BTreeMap;
use std::io::Cursor;

use rill_common::{BrokerId, NodeId};
use serde::{Deserialize, Serialize};

use crate::model::{CommandOutcome, MetadataCommand};

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata log.
    pub TypeConfig:
        D = MetadataCommand,
        R = CommandOutcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageResult<T> = Result<T, openraft::StorageError<NodeId>>;

/// What a node asks of the active controller. The leader turns each into zero or more
/// metadata commands through the I/O-free decisions in [`crate::controller`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: u32,
    },
    AlterConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    RegisterBroker {
        broker_id: BrokerId,
        addr: String,
        #[serde(default)]
        listeners: crate::model::AdvertisedListeners,
        store: crate::model::StoreInfo,
    },
    BrokerHeartbeat {
        broker_id: BrokerId,
        broker_epoch: u64,
        /// The broker's partition store fails: fence it (and keep it fenced) so its
        /// leaderships move and it leaves every ISR.
        #[serde(default)]
        storage_failing: bool,
    },
    /// Partition leaders change their ISRs: each is checked on its own, and those
    /// accepted are written as one entry.
    AlterPartitions(Vec<crate::controller::isr::AlterPartition>),
    /// The group coordinator (on the active controller) persists a group.
    PutGroup {
        group: rill_common::group::GroupDescription,
    },
    /// The group coordinator persists offsets it has checked.
    CommitOffsets {
        group_id: String,
        offsets: Vec<crate::model::OffsetCommit>,
    },
    /// The group coordinator persists many groups' checked offsets in one entry.
    CommitOffsetsBatch {
        commits: Vec<(String, Vec<crate::model::OffsetCommit>)>,
    },
    /// The group coordinator deletes committed offsets it has checked (OffsetDelete).
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, u32)>,
    },
    /// The transaction coordinator persists a transactional id; a completed commit
    /// carries the offsets it makes visible (written in the same entry).
    PutTransaction {
        transaction: rill_common::transaction::TxnDescription,
        offsets: Vec<(String, Vec<crate::model::OffsetCommit>)>,
    },
    /// An admin sets the offsets of a group nobody is in.
    /// An admin sets a user's SCRAM credentials (salted hashes).
    PutUser {
        name: String,
        credentials: Vec<rill_common::scram::ScramCredential>,
    },
    DeleteUser {
        name: String,
    },
    CreateAcls {
        bindings: Vec<rill_common::acl::AclBinding>,
    },
    DeleteAcls {
        filters: Vec<rill_common::acl::AclFilter>,
    },
    ResetGroupOffsets {
        group_id: String,
        offsets: Vec<crate::model::OffsetCommit>,
    },
    /// A block of producer ids for the asking node.
    AllocateProducerIds {
        count: u64,
    },
    /// Hand partitions (of one topic, or all) back to their preferred replicas.
    ElectPreferredLeaders {
        topic: Option<String>,
    },
    /// An operator brings an offline partition back with a replica that may lack
    /// committed records (`rill cluster elect-leaders --unclean`).
    ElectUncleanLeader {
        topic: String,
        partition: u32,
        /// The replica to elect if it is alive (the one with the longest log, as the
        /// asking node found); else the first alive replica.
        candidate: Option<BrokerId>,
    },
    /// Start, replace or cancel (`target: None`) partition reassignments; each request
    /// is checked on its own.
    AlterReassignments(Vec<crate::controller::reassignment::ReassignmentRequest>),
    /// Even replicas and preferred leaders over the placeable brokers: the plan, and with
    /// `execute` its reassignments started.
    Rebalance {
        execute: bool,
    },
    /// Mark a broker draining (no new replicas go to it) and start moving every replica
    /// off it; `cancel` marks it placeable again (moves under way go on).
    DecommissionBroker {
        broker_id: BrokerId,
        cancel: bool,
    },
    /// A node outside the voter set asks to follow the metadata log as a learner.
    AddLearner {
        node_id: NodeId,
        addr: String,
    },
    /// Make a learner that has caught up a voter (a controller).
    AddVoter {
        node_id: NodeId,
    },
    /// Make a voter a learner again (it keeps following the metadata log).
    RemoveVoter {
        node_id: NodeId,
    },
}

/// The controller's answer to a [`ControllerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    Done,
    BrokerRegistered {
        broker_epoch: u64,
    },
    Heartbeat {
        fenced: bool,
    },
    /// Per request, in order: the partition's new epoch, or why it was refused.
    PartitionsAltered {
        results: Vec<Result<u64, (rill_common::ErrorCode, String)>>,
    },
    LeadersElected {
        partitions: u64,
    },
    /// The reassignments planned (those asked, or a rebalance's or decommission's plan)
    /// and, per one started, in order: accepted, or why it was refused (empty when only
    /// proposed).
    Reassignments {
        planned: Vec<crate::controller::reassignment::ReassignmentRequest>,
        results: Vec<Result<(), (rill_common::ErrorCode, String)>>,
    },
    UncleanLeaderElected {
        leader: BrokerId,
        leader_epoch: u64,
    },
    ProducerIds {
        start: i64,
        count: u64,
    },
}

/// A reply plus the index of the last log entry the request wrote, so that the node that
/// forwarded it can wait until its own replica has applied that entry (read your writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedReply {
    pub reply: ControllerReply,
    pub log_index: Option<u64>,
}
