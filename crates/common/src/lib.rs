//! Domain types shared by every Rill crate. No I/O lives here.

pub mod acl;
mod error_code;
pub mod group;
pub mod listeners;
pub mod record;
pub mod scram;
pub mod transaction;

pub use error_code::ErrorCode;

/// A node's id; every node is also a broker with the same id.
pub type NodeId = u64;
/// A broker's id (the id of the node it runs on).
pub type BrokerId = u64;
