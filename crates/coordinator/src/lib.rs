//! Consumer groups. The I/O-free core: the group state machine (`group`) that a
//! coordinator feeds with requests and clock ticks, and the partition assignors
//! (`assignor`) that a group's leader runs; time is passed in, nothing there sleeps,
//! reads a clock or does I/O. Around it, `service`: the coordinator on the active
//! controller (waiting calls, persistence through the metadata log, the clock) and its
//! gRPC edge.

pub mod assignor;
mod error;
pub mod group;
#[cfg(feature = "service")]
pub mod service;
pub mod transaction;
mod types;

pub use error::CoordinatorError;

pub use group::{Group, GroupConfig, Output};
pub use types::{
    Assignment, JoinRequest, JoinResponse, JoinedMember, MemberDescription, Protocol, Subscription,
    SyncRequest, TopicPartition,
};
