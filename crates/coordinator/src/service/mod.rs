//! The coordinator at work: the active controller keeps every group's state machine in
//! memory, answers waiting JoinGroup / SyncGroup calls as the machines say, persists
//! groups and committed offsets through the metadata log, and ticks the clock. A node
//! that is not the active controller answers NOT_COORDINATOR; a node that becomes it
//! reloads the groups from the log (heartbeat deadlines restart). The transaction
//! coordinator (`transactions.rs`) lives beside it the same way.

mod coordinator;
mod grpc;
mod metrics;
mod transactions;

pub use coordinator::GroupCoordinator;
pub use grpc::GroupServiceImpl;
pub use transactions::{EndTxnVersion, TxnBackends, TxnCoordinator};
