//! The values a group exchanges with its members.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A topic name and a partition number.
pub type TopicPartition = (String, u32);

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
}

/// A member's partitions, per topic in ascending order.
pub type Assignment = BTreeMap<String, Vec<u32>>;

/// JoinGroup as the state machine sees it. `member_id` is empty for a new member;
/// `new_member_id` is the id the coordinator gives it then (the edge generates it).
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub new_member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// In order of preference.
    pub protocols: Vec<Protocol>,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub subscription: Subscription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member with its subscription for the chosen protocol; only for the leader.
    pub members: Vec<JoinedMember>,
}

/// SyncGroup: the leader sends every member's assignment, the others send none.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
    pub assignments: BTreeMap<String, Assignment>,
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
}
