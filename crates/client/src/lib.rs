//! The Rust client for Rill, used by the CLI and the tests. Its public types are domain
//! types (serializable in the JSON shapes of DESIGN.md section 3); prost types stay inside.

mod admin;
mod admin_acls;
mod admin_groups;
mod admin_reassignments;
mod admin_transactions;
mod admin_users;
mod connection;
mod consumer;
mod coordinator;
mod error;
mod fetched;
mod group;
mod in_flight;
mod metadata;
pub mod partitioner;
mod producer;
mod replicas;
mod send_batch;
mod session;
mod transactional;

pub use admin::{
    AdminClient, BrokerDescription, ClusterDescription, ControllerDescription, NewTopic,
    PartitionDescription, TopicDescription,
};
pub use admin_groups::{GroupDescription, GroupListing, GroupMember, GroupOffset, TopicPartitions};
pub use admin_reassignments::{
    PartitionReassignment, PlannedMoves, ReassignmentOutcome, ReassignmentPlan, ReassignmentStatus,
};
pub use admin_transactions::{ProducerState, TransactionDescription, TxnPartition};
pub use admin_users::{UserListing, UserMechanism, SCRAM_ITERATIONS};
pub use connection::Bootstrap;
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition};
pub use error::ClientError;
pub use group::{ConsumerGroupMetadata, GroupConsumer, GroupConsumerConfig, RebalanceListener};
pub use producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use replicas::{describe_replicas, ReplicaState, ReplicasDescription};
pub use session::Credentials;
pub use transactional::{TransactionalConfig, TransactionalProducer};
