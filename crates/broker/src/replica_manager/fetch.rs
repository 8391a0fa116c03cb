//! Fetch for consumers and followers (KIP-320 epoch checks, long polls, isolation
//! levels) and OffsetForLeaderEpoch (KIP-101/279).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_common::record::BatchHeader;
use rill_common::transaction::IsolationLevel;
use rill_common::BrokerId;
use tokio::sync::watch;

use crate::divergence::{validate_fetch, Diverging};
use crate::partition::{consumer_bound, Offsets, Partition};
use crate::transactions::AbortedTxn;
use crate::BrokerError;

use super::{request_wait, ReplicaManager};

/// A fetch request's limits as the broker applies them, whichever protocol asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    pub max_wait: Duration,
    pub min_bytes: usize,
    pub max_bytes: usize,
}

impl FetchLimits {
    /// A partition's limit when the request gives none (Kafka's max.partition.fetch.bytes).
    pub const DEFAULT_PARTITION_MAX_BYTES: usize = 1 << 20;
    /// A response's limit when the request gives none (Kafka's fetch.max.bytes).
    pub const DEFAULT_MAX_BYTES: usize = 50 << 20;

    /// Zero or negative byte limits mean "the default".
    pub fn new(max_wait_ms: i64, min_bytes: i64, max_bytes: i64) -> Self {
        Self {
            max_wait: request_wait(max_wait_ms),
            min_bytes: usize::try_from(min_bytes).unwrap_or(0),
            max_bytes: usize::try_from(max_bytes)
                .ok()
                .filter(|b| *b > 0)
                .unwrap_or(Self::DEFAULT_MAX_BYTES),
        }
    }

    pub fn partition_max_bytes(requested: i64) -> usize {
        usize::try_from(requested)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(Self::DEFAULT_PARTITION_MAX_BYTES)
    }
}

#[derive(Debug, Clone)]
pub struct FetchPartitionRequest {
    pub topic: String,
    pub partition: u32,
    pub fetch_offset: u64,
    pub max_bytes: usize,
    pub current_leader_epoch: Option<i32>,
    /// The epoch of the fetcher's last batch (KIP-595): the leader checks its log holds
    /// that epoch up to `fetch_offset` before serving.
    pub last_fetched_epoch: Option<i32>,
    /// What a consumer may read (followers read up to the log end whatever this says).
    pub isolation: IsolationLevel,
}

/// What one partition of a fetch returns: whole batches, or (nothing read) where the
/// fetcher's log diverges from this one.
#[derive(Debug, Default)]
pub struct Fetched {
    pub offsets: Offsets,
    pub batches: Vec<Bytes>,
    pub diverging: Option<Diverging>,
    /// read_committed: the aborted transactions the returned batches overlap (the
    /// client drops their records).
    pub aborted: Vec<AbortedTxn>,
}

#[derive(Debug)]
pub struct FetchPartitionResult {
    pub topic: String,
    pub partition: u32,
    pub result: Result<Fetched, BrokerError>,
}

/// KIP-320: a request's view of the leader epoch must be the current one.
fn check_leader_epoch(p: &Partition, requested: Option<i32>) -> Result<(), BrokerError> {
    let Some(epoch) = requested else {
        return Ok(());
    };
    let current = p.role().leader_epoch;
    if epoch < current {
        return Err(BrokerError::FencedLeaderEpoch {
            request: epoch,
            current,
        });
    }
    if epoch > current {
        return Err(BrokerError::UnknownLeaderEpoch {
            request: epoch,
            current,
        });
    }
    Ok(())
}

/// Waits until one of `changes` moves (true) or `timeout` passes (false). A closed
/// channel counts as a change: its partition is gone and the next read says so.
async fn any_changed(changes: &mut [watch::Receiver<u64>], timeout: Duration) -> bool {
    if changes.is_empty() {
        tokio::time::sleep(timeout).await;
        return false;
    }
    let waits = changes.iter_mut().map(|c| Box::pin(c.changed()));
    tokio::time::timeout(timeout, futures::future::select_all(waits))
        .await
        .is_ok()
}

impl ReplicaManager {
    /// Reads for consumers (leaders only, up to the high watermark), long-polling until
    /// `limits.min_bytes` are there or `limits.max_wait` passes.
    /// `replica_id` is the follower broker for replica fetches (reads up to the log end
    /// and reports the follower's progress), `None` for consumers.
    pub async fn fetch(
        &self,
        replica_id: Option<BrokerId>,
        requests: &[FetchPartitionRequest],
        limits: FetchLimits,
    ) -> Vec<FetchPartitionResult> {
        let results = self.long_poll(replica_id, requests, limits).await;
        if replica_id.is_none() {
            for r in &results {
                if let Ok(fetched) = &r.result {
                    crate::traffic::consumed(&r.topic, &fetched.batches);
                }
            }
        }
        results
    }

    async fn long_poll(
        &self,
        replica_id: Option<BrokerId>,
        requests: &[FetchPartitionRequest],
        limits: FetchLimits,
    ) -> Vec<FetchPartitionResult> {
        let FetchLimits {
            max_wait,
            min_bytes,
            max_bytes,
        } = limits;
        let deadline = Instant::now() + max_wait;
        // Only the partitions asked for can end the wait (a partition this broker does
        // not lead answers with an error at once).
        let mut changes: Vec<watch::Receiver<u64>> = requests
            .iter()
            .filter_map(|r| self.leader_partition(&r.topic, r.partition).ok())
            .map(|p| p.subscribe())
            .collect();
        let mut first_high_watermarks: Option<Vec<Option<u64>>> = None;
        loop {
            for c in &mut changes {
                c.borrow_and_update();
            }
            let results = self.read_once(replica_id, requests, max_bytes);
            // A follower learns the high watermark from the answer: one that moved
            // ends its wait (its consumers and its own next election depend on it).
            let high_watermarks: Vec<Option<u64>> = results
                .iter()
                .map(|r| r.result.as_ref().ok().map(|f| f.offsets.high_watermark))
                .collect();
            let hw_moved = replica_id.is_some()
                && first_high_watermarks
                    .get_or_insert_with(|| high_watermarks.clone())
                    .as_slice()
                    != high_watermarks.as_slice();
            let bytes: usize = results
                .iter()
                .filter_map(|r| r.result.as_ref().ok())
                .flat_map(|f| f.batches.iter().map(Bytes::len))
                .sum();
            let any_error = results
                .iter()
                .any(|r| r.result.as_ref().map_or(true, |f| f.diverging.is_some()));
            let remaining = deadline.saturating_duration_since(Instant::now());
            if bytes >= min_bytes.max(1) || any_error || hw_moved || remaining.is_zero() {
                return results;
            }
            // Nothing moved while waiting: the last read is still the answer, and a
            // follower that waited at the log end is still caught up now.
            if !any_changed(&mut changes, remaining).await {
                if let Some(follower) = replica_id {
                    self.follower_still_waiting(follower, requests);
                }
                return results;
            }
        }
    }

    /// A follower's fetch waited out its poll with nothing new: it still holds what it
    /// asked from, so it counts as caught up as of now (its ISR lag restarts at both ends
    /// of a wait, which may be long for idle partitions).
    fn follower_still_waiting(&self, follower: BrokerId, requests: &[FetchPartitionRequest]) {
        for r in requests {
            if let Ok(p) = self.leader_partition(&r.topic, r.partition) {
                if p.role().replicas.contains(&follower)
                    && p.record_follower_fetch(follower, r.fetch_offset)
                {
                    p.notify_changed();
                }
            }
        }
    }

    fn read_once(
        &self,
        replica_id: Option<BrokerId>,
        requests: &[FetchPartitionRequest],
        max_bytes: usize,
    ) -> Vec<FetchPartitionResult> {
        let mut budget = max_bytes;
        requests
            .iter()
            .map(|r| {
                let result = self.read_partition(replica_id, r, budget);
                if let Ok(fetched) = &result {
                    budget = budget.saturating_sub(fetched.batches.iter().map(Bytes::len).sum());
                }
                FetchPartitionResult {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    result,
                }
            })
            .collect()
    }

    fn read_partition(
        &self,
        replica_id: Option<BrokerId>,
        r: &FetchPartitionRequest,
        budget: usize,
    ) -> Result<Fetched, BrokerError> {
        let p = self.leader_partition(&r.topic, r.partition)?;
        check_leader_epoch(&p, r.current_leader_epoch)?;
        let below_log_start = r.fetch_offset < p.log().log_start_offset();
        if let Some(last_fetched_epoch) = r.last_fetched_epoch.filter(|_| !below_log_start) {
            let leader_end = p.log().end_offset_for_epoch(last_fetched_epoch);
            if let Some(diverging) = validate_fetch(leader_end, last_fetched_epoch, r.fetch_offset)
            {
                return Ok(Fetched {
                    offsets: p.offsets(),
                    diverging: Some(diverging),
                    ..Fetched::default()
                });
            }
        }
        if let Some(follower) = replica_id {
            if !p.role().replicas.contains(&follower) {
                return Err(BrokerError::NotLeader(format!(
                    "broker {follower} is not a replica of {}-{}",
                    r.topic, r.partition
                )));
            }
            let offsets = p.offsets();
            if r.fetch_offset > offsets.log_end || r.fetch_offset < offsets.log_start {
                return Err(BrokerError::OffsetOutOfRange {
                    offset: r.fetch_offset,
                    log_start: offsets.log_start,
                    log_end: offsets.log_end,
                });
            }
            if p.record_follower_fetch(follower, r.fetch_offset) {
                p.notify_changed();
            }
            let limit = r.max_bytes.min(budget.max(1));
            let batches = if budget == 0 {
                Vec::new()
            } else {
                p.log().read(r.fetch_offset, u64::MAX, limit)?
            };
            return Ok(Fetched {
                offsets: p.offsets(),
                batches,
                ..Fetched::default()
            });
        }
        let offsets = p.offsets();
        let bound = consumer_bound(r.isolation, &offsets);
        if r.fetch_offset >= bound && r.fetch_offset <= offsets.log_end {
            return Ok(Fetched {
                offsets,
                ..Fetched::default()
            });
        }
        let limit = r.max_bytes.min(budget.max(1));
        let batches = if budget == 0 {
            Vec::new()
        } else {
            p.read_for_consumer(r.fetch_offset, r.isolation, &offsets, limit)?
        };
        let aborted = match (r.isolation, batches.last()) {
            (IsolationLevel::ReadCommitted, Some(last)) => {
                let end = BatchHeader::parse(last).map_or(bound, |h| h.next_offset());
                p.aborted_between(r.fetch_offset, end)
            }
            _ => Vec::new(),
        };
        Ok(Fetched {
            offsets,
            batches,
            diverging: None,
            aborted,
        })
    }

    /// Leader: where its log ends for `epoch` (KIP-101/279), after checking the asker's
    /// view of the current epoch.
    pub fn offset_for_leader_epoch(
        &self,
        topic: &str,
        partition: u32,
        epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<Option<(i32, u64)>, BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        check_leader_epoch(&p, Some(current_leader_epoch))?;
        Ok(p.log().end_offset_for_epoch(epoch))
    }
}
