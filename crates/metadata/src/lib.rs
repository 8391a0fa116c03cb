//! The metadata quorum: openraft on sled holding brokers, topics and partitions, the
//! controller's I/O-free decisions, the Raft transport and the node-side runtime that
//! forwards writes to the leader and publishes every applied change through a watch.

pub mod access;
pub mod controller;
mod error;
pub mod grpc;
pub mod model;
mod network;
mod node;
pub mod store;
mod types;

pub use error::MetadataError;
pub use model::{
    AdvertisedListeners, Broker, CommittedOffset, MetadataCommand, MetadataState, OffsetCommit,
    PartitionState, StoreInfo, Topic,
};
pub use network::ChannelPool;
pub use node::{ControllerInfo, MetadataNode, MetadataNodeConfig, RaftTimings};
pub use types::{ControllerReply, ControllerRequest, TypeConfig};
