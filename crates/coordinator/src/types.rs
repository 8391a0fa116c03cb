//! The values a group exchanges with its members.

use std::collections::BTreeMap;
use std::time::Duration;

pub use rill_common::group::{
    Assignment, GroupDescription, GroupState, MemberAssignment, MemberDescription, Protocol,
    Subscription, TopicPartition,
};

/// JoinGroup as the state machine sees it. `member_id` is empty for a new member;
/// `new_member_id` is the id the coordinator gives it then (`GroupCoordinator::join`
/// makes it; an edge leaves it empty).
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
    /// KIP-394 (Kafka JoinGroup v4+): a new member without an id is first told its id
    /// (MEMBER_ID_REQUIRED) and joins when it comes back with it.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub subscription: Subscription,
    /// The member's protocol metadata as its Kafka client encoded it.
    pub metadata: Option<Vec<u8>>,
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
    /// A Kafka leader's encoded assignments, relayed to each member as they came.
    pub assignment_bytes: BTreeMap<String, Vec<u8>>,
}
