//! Consumer groups without I/O: the group state machine (`group`) that a coordinator feeds
//! with requests and clock ticks, and the partition assignors (`assignor`) that a group's
//! leader runs. Time is always passed in; nothing here sleeps, reads a clock or does I/O.

pub mod assignor;
pub mod group;
mod types;

pub use group::{Group, GroupConfig, GroupDescription, GroupState, Output};
pub use types::{
    Assignment, JoinRequest, JoinResponse, JoinedMember, MemberDescription, Protocol, Subscription,
    SyncRequest, TopicPartition,
};
