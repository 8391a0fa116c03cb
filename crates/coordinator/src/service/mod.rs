//! The coordinator at work: the active controller keeps every group's state machine in
//! memory, answers waiting JoinGroup / SyncGroup calls as the machines say, persists
//! groups and committed offsets through the metadata log, and ticks the clock. A node
//! that is not the active controller answers NOT_COORDINATOR; a node that becomes it
//! reloads the groups from the log (heartbeat deadlines restart). The transaction
//! coordinator (`transactions.rs`) lives beside it the same way.

mod commit_batch;
mod coordinator;
mod grpc;
mod metrics;
mod transactions;
mod txn_grpc;

use std::sync::Arc;

use rill_common::ErrorCode;
use rill_metadata::{MetadataNode, MetadataState};

use crate::error::CoordinatorError;

pub use coordinator::GroupCoordinator;
pub use grpc::GroupServiceImpl;
pub use transactions::{EndTxnVersion, TxnBackends, TxnCoordinator};
pub use txn_grpc::TransactionServiceImpl;

/// The term check both coordinators make before serving: `Ok(None)` while the term they
/// loaded (`loaded`) lasts; `Ok(Some((term, state)))` when this node is the active
/// controller of a new term, with the state to load (read linearizably, so it holds
/// everything the previous coordinator persisted); NOT_COORDINATOR otherwise. On
/// anything but `Ok(None)` the caller drops what it held.
async fn term_to_load(
    metadata: &MetadataNode,
    loaded: Option<u64>,
) -> Result<Option<(u64, Arc<MetadataState>)>, CoordinatorError> {
    let info = metadata.controller_info();
    if !info.is_leader {
        return Err(ErrorCode::NotCoordinator.into());
    }
    if loaded == Some(info.term) {
        return Ok(None);
    }
    let state = metadata
        .linearizable_state()
        .await
        .map_err(|_| CoordinatorError::from(ErrorCode::NotCoordinator))?;
    Ok(Some((info.term, state)))
}
