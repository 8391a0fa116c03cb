//! The metadata Raft's storage: one sled `Db` holding the log, the vote and the state
//! machine's snapshots. Every fsync of that Db goes through one [`Flusher`].

mod flusher;
mod log_store;
mod state_machine;

use std::path::Path;
use std::sync::Arc;

pub use flusher::Flusher;
pub use log_store::SledLogStore;
pub use state_machine::{SledStateMachine, StateWatch};

use crate::model::MetadataState;
use crate::MetadataError;

/// The metadata store's page cache unless `metadata.cache.capacity.bytes` says otherwise.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 16 << 20;

/// Opens (or creates) the metadata store at `path`. Returns the log store, the state
/// machine (recovered from its last snapshot; openraft re-applies the committed log on
/// top) and a watch that carries the metadata after every applied batch.
pub fn open(
    path: &Path,
    cache_capacity_bytes: u64,
) -> Result<(SledLogStore, SledStateMachine, StateWatch), MetadataError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .open()?;
    let flusher = Flusher::new(db.clone());
    let log_store = SledLogStore::open(&db, flusher.clone())?;
    let (state_machine, watch) = SledStateMachine::open(&db, flusher)?;
    Ok((log_store, state_machine, watch))
}

/// The current metadata, shared without copying.
pub type SharedState = Arc<MetadataState>;
