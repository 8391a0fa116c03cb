use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use rill_common::NodeId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Flusher, SharedState};
use crate::model::{CommandOutcome, MetadataState};
use crate::types::{StorageResult, TypeConfig};
use crate::MetadataError;

const CURRENT_SNAPSHOT: &[u8] = b"current";

/// Receives the metadata after every applied batch of log entries.
pub type StateWatch = watch::Receiver<SharedState>;

/// A snapshot as stored in the `snapshots` tree.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The state machine: the metadata in memory, published through a watch after each
/// applied batch. Only snapshots are persisted (tree `snapshots`); on open the state
/// comes from the last snapshot and openraft re-applies the committed log after it.
pub struct SledStateMachine {
    state: SharedState,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    snapshots: sled::Tree,
    flusher: Flusher,
    publisher: watch::Sender<SharedState>,
}

impl SledStateMachine {
    pub(super) fn open(
        db: &sled::Db,
        flusher: Flusher,
    ) -> Result<(Self, StateWatch), MetadataError> {
        let snapshots = db.open_tree("snapshots")?;
        let (state, last_applied, last_membership) = match read_snapshot(&snapshots)? {
            Some(stored) => (
                serde_json::from_slice(&stored.data)?,
                stored.meta.last_log_id,
                stored.meta.last_membership,
            ),
            None => (MetadataState::default(), None, StoredMembership::default()),
        };
        let state = Arc::new(state);
        let (publisher, watch) = watch::channel(state.clone());
        let machine = Self {
            state,
            last_applied,
            last_membership,
            snapshots,
            flusher,
            publisher,
        };
        Ok((machine, watch))
    }

    fn publish(&self) {
        self.publisher.send_replace(self.state.clone());
    }
}

fn read_snapshot(tree: &sled::Tree) -> Result<Option<StoredSnapshot>, MetadataError> {
    match tree.get(CURRENT_SNAPSHOT)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

async fn write_snapshot(
    tree: &sled::Tree,
    flusher: &Flusher,
    stored: &StoredSnapshot,
) -> StorageResult<()> {
    let signature = Some(stored.meta.signature());
    let bytes = serde_json::to_vec(stored)
        .map_err(|e| StorageIOError::write_snapshot(signature.clone(), &e))?;
    tree.insert(CURRENT_SNAPSHOT, bytes)
        .map_err(|e| StorageIOError::write_snapshot(signature.clone(), &e))?;
    flusher
        .flush()
        .await
        .map_err(|e| StorageIOError::write_snapshot(signature, &e))?;
    Ok(())
}

/// Builds a snapshot of the state as it was when the builder was taken.
pub struct SnapshotBuilder {
    state: SharedState,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    snapshots: sled::Tree,
    flusher: Flusher,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let data = serde_json::to_vec(self.state.as_ref())
            .map_err(|e| StorageIOError::read_state_machine(&e))?;
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        write_snapshot(&self.snapshots, &self.flusher, &stored).await?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandOutcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let state = Arc::make_mut(&mut self.state);
        let mut outcomes = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Ok(None),
                EntryPayload::Normal(command) => state.apply(command, entry.log_id.index),
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    Ok(None)
                }
            };
            outcomes.push(outcome);
        }
        self.publish();
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: self.snapshots.clone(),
            flusher: self.flusher.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let state: MetadataState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        write_snapshot(&self.snapshots, &self.flusher, &stored).await?;
        self.state = Arc::new(state);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let stored =
            read_snapshot(&self.snapshots).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::store::SledLogStore;

    struct Builder;

    impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> StorageResult<(tempfile::TempDir, SledLogStore, SledStateMachine)> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let (log, sm, _watch) =
                crate::store::open(dir.path(), crate::store::DEFAULT_CACHE_CAPACITY_BYTES)
                    .map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_storage_suite() -> Result<(), String> {
        Suite::test_all(Builder).map_err(|e| e.to_string())
    }
}
