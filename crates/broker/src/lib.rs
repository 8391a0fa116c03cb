//! The broker: partition logs (one trait over sled and memory), the replica manager that
//! opens and serves the partitions the metadata assigns to this broker, produce, fetch,
//! list offsets and retention. Never imports openraft.

pub mod divergence;
mod error;
pub mod fetcher;
pub mod grpc;
pub mod log;
pub mod partition;
pub mod produce_validation;
pub mod producer_state;
pub mod replica_manager;
pub mod storage_health;
pub mod throttle;
pub mod traffic;
pub mod transactions;
pub mod txn_verifier;

pub use error::BrokerError;
pub use replica_manager::{Acks, FlushPolicy, ReplicaManager, ReplicationStats};
