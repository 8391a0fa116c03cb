//! A partition's log: batches keyed by base offset, the log start offset, the leader
//! epoch cache (epoch -> first offset) and the high watermark checkpoint. Written once
//! over [`LogBackend`], so the sled and in-memory logs follow the same rules.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use rill_common::record::{self, BatchHeader};
use tracing::warn;

use super::backend::LogBackend;
use crate::BrokerError;

const LOG_START: &[u8] = b"log_start";
const HW_CHECKPOINT: &[u8] = b"hw";
const EPOCH_PREFIX: &[u8] = b"epoch/";
/// The producer-state snapshot: the log end it covers (8 bytes) then the encoded table.
const PRODUCER_SNAPSHOT: &[u8] = b"producer_snapshot";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LogState {
    log_start: u64,
    log_end: u64,
    size_bytes: u64,
    /// Leader epoch -> the first offset written in it.
    epochs: BTreeMap<i32, u64>,
}

pub struct PartitionLog {
    backend: Box<dyn LogBackend>,
    state: Mutex<LogState>,
}

/// What recovery found when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub batches_checked: u64,
    /// Offset from which a corrupt, torn or non-contiguous tail was cut off.
    pub truncated_at: Option<u64>,
}

fn epoch_key(epoch: i32) -> Vec<u8> {
    [EPOCH_PREFIX, &(epoch as u32).to_be_bytes()].concat()
}

fn u64_value(v: &[u8]) -> Result<u64, BrokerError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| BrokerError::Storage(format!("state value of {} bytes", v.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// A stored producer snapshot: the log end it covers, then the encoded table.
fn split_snapshot(stored: &[u8]) -> Option<(u64, &[u8])> {
    let (at, table) = stored.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), table))
}

impl PartitionLog {
    /// Opens the log and recovers it: every stored batch is verified (the envelope CRC
    /// over all of its bytes, its key, contiguity) and the tail from the first bad one is
    /// cut off; the epoch cache forgets epochs that start past the log end.
    pub fn open(backend: Box<dyn LogBackend>) -> Result<(Self, Recovery), BrokerError> {
        let log_start = backend
            .meta_get(LOG_START)?
            .map(|v| u64_value(&v))
            .transpose()?
            .unwrap_or(0);
        let mut epochs = BTreeMap::new();
        for (k, v) in backend.meta_scan(EPOCH_PREFIX)? {
            let raw: [u8; 4] = k[EPOCH_PREFIX.len()..]
                .try_into()
                .map_err(|_| BrokerError::Storage("bad epoch key".into()))?;
            epochs.insert(u32::from_be_bytes(raw) as i32, u64_value(&v)?);
        }

        let mut recovery = Recovery::default();
        let mut size_bytes = 0u64;
        let mut expected: Option<u64> = None;
        let mut log_end = log_start;
        let mut failure: Option<(u64, String)> = None;
        backend.scan(0, &mut |base, stored| {
            if let Some(next) = expected {
                if base != next {
                    failure = Some((base, format!("batch at {base} does not follow {next}")));
                    return ControlFlow::Break(());
                }
            }
            // The envelope CRC covers every byte of the batch.
            recovery.batches_checked += 1;
            let checked = record::decode_stored(stored).map(|(h, _)| h);
            match checked {
                Ok(h) if h.base_offset == base => {
                    size_bytes += stored.len() as u64;
                    expected = Some(h.next_offset());
                    log_end = h.next_offset();
                    ControlFlow::Continue(())
                }
                Ok(h) => {
                    failure = Some((
                        base,
                        format!("batch keyed {base} says base offset {}", h.base_offset),
                    ));
                    ControlFlow::Break(())
                }
                Err(e) => {
                    failure = Some((base, e.to_string()));
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some((at, why)) = failure {
            warn!(offset = at, "cutting off the log tail on recovery: {why}");
            backend.remove_from(at)?;
            recovery.truncated_at = Some(at);
        }
        let log_end = log_end.max(log_start);
        let stale: Vec<i32> = epochs
            .iter()
            .filter(|(_, s)| **s >= log_end && log_end > 0)
            .map(|(e, _)| *e)
            .collect();
        for epoch in stale {
            epochs.remove(&epoch);
            backend.meta_remove(&epoch_key(epoch))?;
        }
        let log = Self {
            backend,
            state: Mutex::new(LogState {
                log_start,
                log_end,
                size_bytes,
                epochs,
            }),
        };
        Ok((log, recovery))
    }

    pub(super) fn backend(&self) -> &dyn LogBackend {
        self.backend.as_ref()
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log_start_offset(&self) -> u64 {
        self.state().log_start
    }

    pub fn log_end_offset(&self) -> u64 {
        self.state().log_end
    }

    pub fn size_bytes(&self) -> u64 {
        self.state().size_bytes
    }

    /// The epoch of the last batch, if any epoch was recorded.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.state().epochs.keys().next_back().copied()
    }

    /// Where a follower fetches from and the epoch of its last batch (KIP-595's
    /// `last_fetched_epoch`), read together.
    pub fn fetch_position(&self) -> (u64, Option<i32>) {
        let state = self.state();
        (state.log_end, state.epochs.keys().next_back().copied())
    }

    pub fn epoch_entries(&self) -> Vec<(i32, u64)> {
        self.state().epochs.iter().map(|(e, o)| (*e, *o)).collect()
    }

    /// Appends a validated batch as the leader: stamps the next offset and `leader_epoch`
    /// in place and records the epoch's first offset.
    pub fn append_as_leader(
        &self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<BatchHeader, BrokerError> {
        let mut state = self.state();
        record::set_base_offset(batch, state.log_end);
        record::set_partition_leader_epoch(batch, leader_epoch);
        self.append_locked(&mut state, batch)
    }

    /// Appends a batch copied from the leader, keeping its offsets and epoch. It must
    /// start at the log end offset.
    pub fn append_replicated(&self, batch: &[u8]) -> Result<BatchHeader, BrokerError> {
        let mut state = self.state();
        self.append_locked(&mut state, batch)
    }

    fn append_locked(
        &self,
        state: &mut LogState,
        batch: &[u8],
    ) -> Result<BatchHeader, BrokerError> {
        let header = BatchHeader::parse(batch)?;
        if header.base_offset != state.log_end {
            return Err(BrokerError::Storage(format!(
                "batch at {} does not start at the log end {}",
                header.base_offset, state.log_end
            )));
        }
        let epoch = header.partition_leader_epoch;
        let latest = state.epochs.keys().next_back().copied();
        if epoch >= 0 && latest.is_none_or(|l| epoch > l) {
            self.backend
                .meta_put(&epoch_key(epoch), &header.base_offset.to_be_bytes())?;
            state.epochs.insert(epoch, header.base_offset);
        }
        let stored = record::encode_stored(batch);
        let stored_len = stored.len() as u64;
        self.backend.insert(header.base_offset, stored)?;
        state.log_end = header.next_offset();
        state.size_bytes += stored_len;
        Ok(header)
    }

    /// Whole batches holding offsets in `[from, below)`: the first is the batch that
    /// contains `from`; at least one batch is returned even when it exceeds `max_bytes`.
    pub fn read(&self, from: u64, below: u64, max_bytes: usize) -> Result<Vec<Bytes>, BrokerError> {
        let (log_start, log_end) = {
            let s = self.state();
            (s.log_start, s.log_end)
        };
        if from < log_start || from > log_end {
            return Err(BrokerError::OffsetOutOfRange {
                offset: from,
                log_start,
                log_end,
            });
        }
        // A caught-up reader (the common case of an idle partition) costs no lookup.
        if from == log_end || from >= below {
            return Ok(Vec::new());
        }
        let start = match self.backend.floor(from)? {
            Some((base, stored)) => {
                let (h, _) = record::decode_stored(&stored)?;
                if h.last_offset() >= from {
                    base
                } else {
                    h.next_offset()
                }
            }
            None => from,
        };
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut error = None;
        self.backend.scan(start, &mut |base, stored| {
            if base >= below || (!out.is_empty() && total + stored.len() > max_bytes) {
                return ControlFlow::Break(());
            }
            match record::decode_stored(stored) {
                Ok((_, batch)) => {
                    total += batch.len();
                    out.push(Bytes::copy_from_slice(batch));
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    error = Some(BrokerError::CorruptStoredBatch {
                        offset: base,
                        reason: e.to_string(),
                    });
                    ControlFlow::Break(())
                }
            }
        })?;
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Headers of the batches from the one containing `from`, at most `limit`.
    pub fn headers(&self, from: u64, limit: usize) -> Result<Vec<BatchHeader>, BrokerError> {
        let start = match self.backend.floor(from)? {
            Some((base, _)) => base,
            None => from,
        };
        let mut out = Vec::new();
        let mut error = None;
        self.backend.scan(
            start,
            &mut |_, stored| match record::decode_stored(stored) {
                Ok((h, _)) => {
                    out.push(h);
                    if out.len() >= limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                Err(e) => {
                    error = Some(BrokerError::from(e));
                    ControlFlow::Break(())
                }
            },
        )?;
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Removes the suffix from `offset` on; a batch that contains `offset` goes too, so
    /// the log end becomes a batch boundary at or below `offset`.
    pub fn truncate_to(&self, offset: u64) -> Result<(), BrokerError> {
        let mut state = self.state();
        if offset >= state.log_end {
            return Ok(());
        }
        let cut = match self.backend.floor(offset)? {
            Some((base, stored)) => {
                let (h, _) = record::decode_stored(&stored)?;
                if h.last_offset() >= offset {
                    base
                } else {
                    offset
                }
            }
            None => offset,
        };
        let mut removed = 0u64;
        self.backend.scan(cut, &mut |_, stored| {
            removed += stored.len() as u64;
            ControlFlow::Continue(())
        })?;
        // A producer snapshot past the cut describes batches that are about to go.
        let stale = self
            .backend
            .meta_get(PRODUCER_SNAPSHOT)?
            .is_some_and(|v| split_snapshot(&v).is_none_or(|(at, _)| at > cut));
        if stale {
            self.backend.meta_remove(PRODUCER_SNAPSHOT)?;
        }
        // Aborted transactions whose marker is cut off go with it.
        self.remove_aborted_unless(|marker| marker < cut)?;
        self.backend.remove_from(cut)?;
        state.log_end = cut.max(state.log_start);
        state.size_bytes = state.size_bytes.saturating_sub(removed);
        let stale: Vec<i32> = state
            .epochs
            .iter()
            .filter(|(_, s)| **s >= state.log_end)
            .map(|(e, _)| *e)
            .collect();
        for epoch in stale {
            self.backend.meta_remove(&epoch_key(epoch))?;
            state.epochs.remove(&epoch);
        }
        Ok(())
    }

    /// Deletes whole batches below `offset` (retention) and moves the log start there.
    pub fn delete_before(&self, offset: u64) -> Result<(), BrokerError> {
        let mut state = self.state();
        let offset = offset.min(state.log_end);
        if offset <= state.log_start {
            return Ok(());
        }
        let mut removed = 0u64;
        let mut keys_below = Vec::new();
        self.backend
            .scan(0, &mut |base, stored| match record::decode_stored(stored) {
                Ok((h, _)) if h.next_offset() <= offset => {
                    removed += stored.len() as u64;
                    keys_below.push(base);
                    ControlFlow::Continue(())
                }
                _ => ControlFlow::Break(()),
            })?;
        if let Some(last) = keys_below.last() {
            self.backend.remove_before(last + 1)?;
        }
        self.backend.meta_put(LOG_START, &offset.to_be_bytes())?;
        self.remove_aborted_unless(|marker| marker >= offset)?;
        state.log_start = offset;
        state.size_bytes = state.size_bytes.saturating_sub(removed);
        // Epochs that ended before the new start are gone; the one in force moves up.
        // Start offsets grow with the epoch: the one in force is the last that started by `offset`.
        let in_force = state
            .epochs
            .iter()
            .filter(|(_, start)| **start <= offset)
            .map(|(e, _)| *e)
            .next_back();
        let older: Vec<i32> = state
            .epochs
            .keys()
            .filter(|e| Some(**e) < in_force)
            .copied()
            .collect();
        for epoch in older {
            self.backend.meta_remove(&epoch_key(epoch))?;
            state.epochs.remove(&epoch);
        }
        if let Some(epoch) = in_force {
            self.backend
                .meta_put(&epoch_key(epoch), &offset.to_be_bytes())?;
            state.epochs.insert(epoch, offset);
        }
        Ok(())
    }

    /// Kafka's OffsetsForLeaderEpoch answer: the largest epoch <= `epoch` this log knows
    /// and the offset where it ended (the next epoch's start, or the log end for the
    /// latest). `None` when the log knows no epoch that old.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        let state = self.state();
        let (found, _) = state.epochs.range(..=epoch).next_back()?;
        let end = state
            .epochs
            .range(found + 1..)
            .next()
            .map_or(state.log_end, |(_, start)| *start);
        Some((*found, end))
    }

    pub fn high_watermark_checkpoint(&self) -> Result<u64, BrokerError> {
        Ok(self
            .backend
            .meta_get(HW_CHECKPOINT)?
            .map(|v| u64_value(&v))
            .transpose()?
            .unwrap_or(0))
    }

    pub fn checkpoint_high_watermark(&self, hw: u64) -> Result<(), BrokerError> {
        self.backend.meta_put(HW_CHECKPOINT, &hw.to_be_bytes())
    }

    /// The stored producer-state snapshot and the log end it covers, if it still fits
    /// this log: one past the end (recovery cut the tail), below the start (retention
    /// deleted batches it has not seen) or malformed is dropped.
    pub fn producer_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, BrokerError> {
        let state = self.state();
        let Some(stored) = self.backend.meta_get(PRODUCER_SNAPSHOT)? else {
            return Ok(None);
        };
        match split_snapshot(&stored) {
            Some((at, table)) if (state.log_start..=state.log_end).contains(&at) => {
                Ok(Some((at, table.to_vec())))
            }
            _ => {
                self.backend.meta_remove(PRODUCER_SNAPSHOT)?;
                Ok(None)
            }
        }
    }

    /// Stores the producer table as it is at log end `at`.
    pub fn put_producer_snapshot(&self, at: u64, table: &[u8]) -> Result<(), BrokerError> {
        let mut value = Vec::with_capacity(8 + table.len());
        value.extend_from_slice(&at.to_be_bytes());
        value.extend_from_slice(table);
        self.backend.meta_put(PRODUCER_SNAPSHOT, &value)
    }
}
