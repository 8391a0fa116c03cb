// openraft's StorageIOError is large; the storage traits return it, so helpers do too.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rill_common::NodeId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Flusher;
use crate::types::{StorageResult, TypeConfig};
use crate::MetadataError;

const VOTE: &[u8] = b"vote";
const LAST_PURGED: &[u8] = b"last_purged";
const COMMITTED: &[u8] = b"committed";

/// The Raft log in sled: tree `raft_log` maps the big-endian index to the entry, tree
/// `raft_meta` holds the vote, the last purged log id and the committed log id.
#[derive(Clone)]
pub struct SledLogStore {
    log: sled::Tree,
    meta: sled::Tree,
    flusher: Flusher,
    /// The last committed index openraft reported, for metrics.
    committed_index: Arc<AtomicU64>,
}

impl SledLogStore {
    pub(super) fn open(db: &sled::Db, flusher: Flusher) -> Result<Self, MetadataError> {
        Ok(Self {
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            flusher,
            committed_index: Arc::default(),
        })
    }

    /// A live view of the committed log index (0 before the first commit).
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageIOError<NodeId>> {
        let Some(bytes) = self.meta.get(key).map_err(|e| StorageIOError::read(&e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageIOError::read(&e))
    }

    fn write_meta<T: Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StorageIOError<NodeId>> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageIOError::write(&e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageIOError<NodeId>> {
        self.flusher
            .flush()
            .await
            .map_err(|e| StorageIOError::write(&e))
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId<NodeId>>, StorageIOError<NodeId>> {
        let Some((_, bytes)) = self.log.last().map_err(|e| StorageIOError::read_logs(&e))? else {
            return Ok(None);
        };
        let entry: Entry<TypeConfig> =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_logs(&e))?;
        Ok(Some(entry.log_id))
    }

    /// Removes every entry with an index in `range` (sled has no range delete).
    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageIOError<NodeId>> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(range) {
            let (key, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(key);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let iter = match range.end_bound() {
            Bound::Included(e) => self.log.range(key(start)..=key(*e)),
            Bound::Excluded(e) => self.log.range(key(start)..key(*e)),
            Bound::Unbounded => self.log.range(key(start)..),
        };
        let mut entries = Vec::new();
        for item in iter {
            let (_, bytes) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            let entry =
                serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_logs(&e))?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.write_meta(VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.read_meta(VOTE)?)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        let index = committed.map_or(0, |c| c.index);
        self.committed_index.store(index, Ordering::Relaxed);
        // Not fsynced: a lost committed id only means re-applying less on restart.
        Ok(self.write_meta(COMMITTED, &committed)?)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&key(entry.log_id.index), bytes);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // Durable before openraft hears about it: fsync here, then complete the callback.
        let flushed = self.flusher.flush().await;
        let result = flushed
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(result);
        flushed.map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.remove_range(key(log_id.index)..)?;
        self.flush().await?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // Persist the purge point first: a crash in between leaves only extra entries.
        self.write_meta(LAST_PURGED, &log_id)?;
        self.flush().await?;
        self.remove_range(..=key(log_id.index))?;
        Ok(())
    }
}
