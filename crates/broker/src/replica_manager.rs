//! The replica manager: opens the partitions the metadata assigns to this broker, keeps
//! their roles current, and serves produce, fetch, list offsets and retention.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rill_common::record::BatchHeader;
use rill_common::transaction::IsolationLevel;
use rill_common::BrokerId;
use rill_metadata::controller::config;
use rill_metadata::controller::isr::AlterPartition;
use rill_metadata::{MetadataState, Topic};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::divergence::{validate_fetch, Diverging};
use crate::log::{LogStorage, PartitionKey};
use crate::partition::{
    consumer_bound, retention_point, Offsets, Partition, PartitionConfig, Role,
};
use crate::transactions::AbortedTxn;
use crate::txn_verifier::TxnVerifier;
use crate::BrokerError;

mod transactions;

/// When an acknowledged write is on disk (`log.flush.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Acknowledge only after the fsync that covers the write (group commit).
    Group,
    /// Acknowledge at once; a timer fsyncs every interval.
    Interval(Duration),
}

/// How many replicas must have a write before the producer hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn from_wire(acks: i32) -> Result<Self, BrokerError> {
        match acks {
            0 => Ok(Self::None),
            1 => Ok(Self::Leader),
            -1 => Ok(Self::All),
            other => Err(BrokerError::InvalidRequest(format!(
                "acks must be -1, 0 or 1, got {other}"
            ))),
        }
    }
}

/// The longest a request may wait on its own account (a produce timeout, a fetch's max
/// wait), on either protocol.
pub const MAX_REQUEST_WAIT: Duration = Duration::from_secs(30);

/// A requested wait in milliseconds, bounded by [`MAX_REQUEST_WAIT`] (negative = 0).
pub fn request_wait(requested_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(requested_ms).unwrap_or(0)).min(MAX_REQUEST_WAIT)
}

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

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: u64,
    pub log_start_offset: u64,
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

type TopicPartition = (String, u32);

pub struct ReplicaManager {
    broker_id: BrokerId,
    storage: Arc<dyn LogStorage>,
    flush: FlushPolicy,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The metadata last applied; `None` until the first apply (the broker has not
    /// registered yet and serves nothing).
    metadata: RwLock<Option<Arc<MetadataState>>>,
    /// Bumped whenever a high watermark moves, to wake long-polling fetches.
    data_changed: watch::Sender<u64>,
    /// How often this broker became a partition's leader after opening it.
    leaderships_gained: AtomicU64,
    /// ISR changes of partitions this broker leads (whatever their cause).
    isr_shrinks: AtomicU64,
    isr_expands: AtomicU64,
    /// Verifies transactions' first writes with the coordinator (set by the node).
    txn_verifier: OnceLock<Arc<dyn TxnVerifier>>,
}

/// Replication health of this broker, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationStats {
    pub leader_partitions: usize,
    /// Partitions this broker leads whose ISR is smaller than their replica set.
    pub under_replicated_partitions: usize,
    pub leaderships_gained: u64,
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    /// (topic, partition, follower, records behind the leader's log end).
    pub follower_lag: Vec<(String, u32, BrokerId, u64)>,
    /// Transactions open on the partitions this broker leads.
    pub open_transactions: usize,
    /// (topic, partition, high watermark minus LSO) where an open transaction holds
    /// read_committed readers back.
    pub lso_lag: Vec<(String, u32, u64)>,
}

fn partition_config(topic: &Topic) -> PartitionConfig {
    let effective = config::effective(&topic.configs, topic.replication_factor());
    let int = |key: &str, default: i64| {
        effective
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    PartitionConfig {
        max_message_bytes: int(config::MAX_MESSAGE_BYTES, 1_048_588).max(0) as usize,
        retention_ms: int(config::RETENTION_MS, -1),
        retention_bytes: int(config::RETENTION_BYTES, -1),
        min_insync_replicas: int(config::MIN_INSYNC_REPLICAS, 1).max(1) as usize,
    }
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

/// A replica as `describe_replica` reports it.
#[derive(Debug, Clone)]
pub struct ReplicaDescription {
    pub offsets: Offsets,
    pub leader_epoch: i32,
    pub is_leader: bool,
    pub checksum: String,
    pub checked_up_to: u64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ReplicaManager {
    pub fn new(broker_id: BrokerId, storage: Arc<dyn LogStorage>, flush: FlushPolicy) -> Self {
        Self {
            broker_id,
            storage,
            flush,
            partitions: RwLock::default(),
            metadata: RwLock::default(),
            data_changed: watch::channel(0).0,
            leaderships_gained: AtomicU64::new(0),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            txn_verifier: OnceLock::new(),
        }
    }

    pub fn replication_stats(&self) -> ReplicationStats {
        let mut stats = ReplicationStats {
            leaderships_gained: self.leaderships_gained.load(Ordering::Relaxed),
            isr_shrinks: self.isr_shrinks.load(Ordering::Relaxed),
            isr_expands: self.isr_expands.load(Ordering::Relaxed),
            ..Default::default()
        };
        for p in self.all_partitions().iter().filter(|p| p.is_leader()) {
            stats.leader_partitions += 1;
            let role = p.role();
            if role.isr.len() < role.replicas.len() {
                stats.under_replicated_partitions += 1;
            }
            drop(role);
            for (follower, lag) in p.follower_lags() {
                stats
                    .follower_lag
                    .push((p.topic.clone(), p.key.partition, follower, lag));
            }
            let open = p.open_transactions().len();
            if open > 0 {
                stats.open_transactions += open;
                let o = p.offsets();
                let lag = o.high_watermark.saturating_sub(o.last_stable_offset);
                stats.lso_lag.push((p.topic.clone(), p.key.partition, lag));
            }
        }
        stats
    }

    pub fn flush_policy(&self) -> FlushPolicy {
        self.flush
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Opens partitions newly assigned to this broker, updates roles and configs, and
    /// closes (and deletes) replicas of topics that were deleted or moved away.
    pub fn apply_metadata(&self, state: Arc<MetadataState>) {
        let mut wanted: HashMap<TopicPartition, (PartitionKey, Role)> = HashMap::new();
        for topic in state.topics.values() {
            let config = partition_config(topic);
            for p in &topic.partitions {
                if !p.replicas.contains(&self.broker_id) {
                    continue;
                }
                let role = Role {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch as i32,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                    unclean_leader_epoch: p.unclean_leader_epoch.map(|e| e as i32),
                    config: config.clone(),
                };
                let key = PartitionKey {
                    topic_id: topic.topic_id.clone(),
                    partition: p.partition,
                };
                wanted.insert((topic.name.clone(), p.partition), (key, role));
            }
        }
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(tp, p)| wanted.get(*tp).is_none_or(|(key, _)| *key != p.key))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in gone {
            if let Some(p) = partitions.remove(&tp) {
                info!(topic = %tp.0, partition = tp.1, "closing and deleting replica");
                if let Err(e) = self.storage.delete(&p.key) {
                    warn!(topic = %tp.0, partition = tp.1, "cannot delete replica data: {e}");
                }
            }
        }
        for (tp, (key, role)) in wanted {
            match partitions.get(&tp) {
                Some(p) => {
                    let old = p.role().clone();
                    if old != role {
                        self.count_role_change(&tp, &old, &role);
                        p.set_role(role);
                    }
                }
                None => match self.storage.open(&key) {
                    Ok((log, recovery)) => {
                        info!(topic = %tp.0, partition = tp.1, log_end = log.log_end_offset(),
                            checked = recovery.batches_checked, truncated_at = ?recovery.truncated_at, "opened replica");
                        // Replicas open only after this incarnation registered, so a
                        // leadership found on opening was won by it.
                        if role.leader == Some(self.broker_id) {
                            self.leaderships_gained.fetch_add(1, Ordering::Relaxed);
                            info!(topic = %tp.0, partition = tp.1, leader_epoch = role.leader_epoch, "leading");
                        }
                        let partition =
                            Partition::new(tp.0.clone(), key, self.broker_id, log, role);
                        partitions.insert(tp, Arc::new(partition));
                    }
                    Err(e) => warn!(topic = %tp.0, partition = tp.1, "cannot open replica: {e}"),
                },
            }
        }
        drop(partitions);
        *self.metadata.write().unwrap_or_else(|e| e.into_inner()) = Some(state);
        self.data_changed.send_modify(|n| *n += 1);
    }

    /// Counts what a role change means for this broker: a leadership won, or an ISR
    /// that shrank or grew under it.
    fn count_role_change(&self, tp: &TopicPartition, old: &Role, new: &Role) {
        let me = Some(self.broker_id);
        if new.leader != me {
            return;
        }
        if old.leader != me || old.leader_epoch != new.leader_epoch {
            self.leaderships_gained.fetch_add(1, Ordering::Relaxed);
            info!(topic = %tp.0, partition = tp.1, leader_epoch = new.leader_epoch, "leading");
            return;
        }
        if old.isr.iter().any(|b| !new.isr.contains(b)) {
            self.isr_shrinks.fetch_add(1, Ordering::Relaxed);
        }
        if new.isr.iter().any(|b| !old.isr.contains(b)) {
            self.isr_expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Deletes stored partitions the metadata no longer knows. Call only once this
    /// node's metadata is caught up, so nothing is deleted for lack of information.
    pub fn delete_orphans(&self) {
        let open: Vec<PartitionKey> = self
            .all_partitions()
            .iter()
            .map(|p| p.key.clone())
            .collect();
        match self.storage.list() {
            Ok(stored) => {
                for key in stored.into_iter().filter(|k| !open.contains(k)) {
                    info!(topic_id = %key.topic_id, partition = key.partition, "deleting orphaned replica");
                    if let Err(e) = self.storage.delete(&key) {
                        warn!("cannot delete orphaned replica: {e}");
                    }
                }
            }
            Err(e) => warn!("cannot list stored replicas: {e}"),
        }
    }

    /// The error for a partition this broker does not serve.
    fn missing(&self, topic: &str, partition: u32) -> BrokerError {
        let known = match &*self.metadata.read().unwrap_or_else(|e| e.into_inner()) {
            Some(state) => state.partition(topic, partition).is_some(),
            // Before its first metadata this broker knows nothing: retriable, never the
            // definite UNKNOWN_TOPIC_OR_PARTITION.
            None => true,
        };
        if known {
            BrokerError::NotLeader(format!(
                "broker {} does not lead {topic}-{partition}",
                self.broker_id
            ))
        } else {
            BrokerError::UnknownTopicOrPartition(format!("{topic}-{partition}"))
        }
    }

    fn leader_partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, BrokerError> {
        let p = self
            .partition(topic, partition)
            .ok_or_else(|| self.missing(topic, partition))?;
        if !p.is_leader() {
            return Err(p.not_leader());
        }
        Ok(p)
    }

    /// Appends a producer's batch and waits as `acks` asks: nothing, the leader's durable
    /// write, or the high watermark passing the batch. A transactional batch names its
    /// `transactional_id`; its first write to this partition is verified with the
    /// transaction coordinator first.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        acks: Acks,
        records: Bytes,
        timeout: Duration,
        transactional_id: Option<&str>,
    ) -> Result<Produced, BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let mut batch = records.to_vec();
        let verification = self
            .verify_first_write(&p, &batch, transactional_id)
            .await?;
        let appended = p.append_verified(&mut batch, acks == Acks::All, verification)?;
        let next = appended.next_offset;
        if !appended.duplicate {
            crate::traffic::produced(topic, next - appended.base_offset, batch.len());
            // Wake followers long-polling for new data.
            self.data_changed.send_modify(|n| *n += 1);
        }
        let durable = self.make_durable(p.clone(), next);
        match acks {
            Acks::None => {
                tokio::spawn(durable);
            }
            Acks::Leader => durable.await?,
            Acks::All => {
                durable.await?;
                self.wait_for_high_watermark(&p, next, timeout).await?;
            }
        }
        Ok(Produced {
            base_offset: appended.base_offset,
            log_start_offset: p.log().log_start_offset(),
        })
    }

    /// Makes everything up to `next` durable per the flush policy, then lets the high
    /// watermark follow.
    fn make_durable(
        &self,
        partition: Arc<Partition>,
        next: u64,
    ) -> impl std::future::Future<Output = Result<(), BrokerError>> + Send + 'static {
        let flusher = match self.flush {
            FlushPolicy::Group => self.storage.flusher(),
            FlushPolicy::Interval(_) => None,
        };
        let data_changed = self.data_changed.clone();
        async move {
            if let Some(flusher) = flusher {
                flusher
                    .flush()
                    .await
                    .map_err(|e| BrokerError::Storage(format!("fsync failed: {e}")))?;
            }
            if partition.mark_durable(next) {
                data_changed.send_modify(|n| *n += 1);
            }
            Ok(())
        }
    }

    async fn wait_for_high_watermark(
        &self,
        p: &Partition,
        next: u64,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.data_changed.subscribe();
        while p.high_watermark() < next {
            if !p.is_leader() {
                return Err(p.not_leader());
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(BrokerError::Timeout(format!(
                    "high watermark did not reach {next}"
                )));
            }
        }
        Ok(())
    }

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
        let mut changed = self.data_changed.subscribe();
        loop {
            changed.borrow_and_update();
            let results = self.read_once(replica_id, requests, max_bytes);
            let bytes: usize = results
                .iter()
                .filter_map(|r| r.result.as_ref().ok())
                .flat_map(|f| f.batches.iter().map(Bytes::len))
                .sum();
            let any_error = results
                .iter()
                .any(|r| r.result.as_ref().map_or(true, |f| f.diverging.is_some()));
            let remaining = deadline.saturating_duration_since(Instant::now());
            if bytes >= min_bytes.max(1) || any_error || remaining.is_zero() {
                return results;
            }
            if tokio::time::timeout(remaining, changed.changed())
                .await
                .is_err()
            {
                return self.read_once(replica_id, requests, max_bytes);
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
                self.data_changed.send_modify(|n| *n += 1);
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

    /// This broker's replica: offsets, leader epoch, leadership, and a CRC32C over the
    /// batches in `[from, to)` (whole batches; replicas hold identical bytes).
    pub fn describe_replica(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        to: u64,
    ) -> Result<ReplicaDescription, BrokerError> {
        let p = self
            .partition(topic, partition)
            .ok_or_else(|| self.missing(topic, partition))?;
        let offsets = p.offsets();
        let mut crc = 0u32;
        let mut checked_up_to = from;
        if to > from {
            let mut next = from.max(offsets.log_start);
            while next < to.min(offsets.log_end) {
                let batches = p.log().read(next, to, 1 << 20)?;
                if batches.is_empty() {
                    break;
                }
                for b in &batches {
                    crc = crc32c::crc32c_append(crc, b);
                    next = rill_common::record::BatchHeader::parse(b)?.next_offset();
                }
            }
            checked_up_to = next;
        }
        let leader_epoch = p.role().leader_epoch;
        Ok(ReplicaDescription {
            offsets,
            leader_epoch,
            is_leader: p.is_leader(),
            checksum: format!("{crc:08x}"),
            checked_up_to,
        })
    }

    /// The partitions this broker follows, with their leaders.
    pub fn followed_partitions(&self) -> Vec<(BrokerId, Arc<Partition>)> {
        self.all_partitions()
            .into_iter()
            .filter_map(|p| {
                let leader = p.role().leader?;
                (leader != self.broker_id).then_some((leader, p))
            })
            .collect()
    }

    /// The metadata last applied (`None` before the first apply).
    pub(crate) fn metadata(&self) -> Option<Arc<MetadataState>> {
        self.metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The address of a broker, from the latest metadata.
    pub fn broker_addr(&self, broker: BrokerId) -> Option<String> {
        self.metadata()?
            .brokers
            .get(&broker)
            .map(|b| b.addr.clone())
    }

    pub fn broker_id(&self) -> BrokerId {
        self.broker_id
    }

    /// ISR changes the partitions this broker leads need (`broker_epoch` is left 0 for
    /// the caller to fill in).
    pub fn isr_changes(&self, lag_max: Duration) -> Vec<AlterPartition> {
        self.all_partitions()
            .into_iter()
            .filter_map(|p| {
                let (role, isr) = p.isr_proposal(lag_max)?;
                Some(AlterPartition {
                    broker_id: self.broker_id,
                    broker_epoch: 0,
                    topic: p.topic.clone(),
                    partition: p.key.partition,
                    leader_epoch: role.leader_epoch as u64,
                    partition_epoch: role.partition_epoch,
                    isr,
                })
            })
            .collect()
    }

    /// `timestamp`: -2 earliest (and -4, Kafka's earliest local), -1 latest (where a
    /// consumer with `isolation` reads up to: the LSO for read_committed, the high
    /// watermark for read_uncommitted), -3 the record with the largest timestamp, else
    /// the first offset with a timestamp at least that. Also returns the partition's
    /// offsets.
    pub fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
        isolation: IsolationLevel,
    ) -> Result<(Option<(u64, i64)>, Offsets), BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let offsets = p.offsets();
        let found = match timestamp {
            -2 | -4 => Some((offsets.log_start, -1)),
            -1 => Some((consumer_bound(isolation, &offsets), -1)),
            -3 => p.offset_of_max_timestamp()?,
            t if t >= 0 => p.offset_for_timestamp(t)?,
            other => return Err(BrokerError::InvalidRequest(format!("timestamp {other}"))),
        };
        Ok((found, offsets))
    }

    /// DeleteRecords: the leader moves its log start to `offset` (-1: the high watermark),
    /// which must not pass the high watermark; followers follow through their fetches.
    /// Returns the new log start.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
    ) -> Result<u64, BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let offsets = p.offsets();
        let target = match offset {
            -1 => offsets.high_watermark,
            o => u64::try_from(o)
                .ok()
                .filter(|o| *o <= offsets.high_watermark)
                .ok_or(BrokerError::OffsetOutOfRange {
                    offset: o.max(0) as u64,
                    log_start: offsets.log_start,
                    log_end: offsets.high_watermark,
                })?,
        };
        p.log().delete_before(target)?;
        info!(
            topic,
            partition,
            log_start = p.log().log_start_offset(),
            "records deleted"
        );
        Ok(p.log().log_start_offset())
    }

    /// Applies `retention.ms` and `retention.bytes` to every replica.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for p in self.all_partitions() {
            let config = p.role().config.clone();
            if config.retention_ms < 0 && config.retention_bytes < 0 {
                continue;
            }
            let log = p.log();
            let result =
                log.headers(log.log_start_offset(), 10_000).and_then(
                    |headers| match retention_point(
                        &headers,
                        log.size_bytes(),
                        now,
                        &config,
                        // An open transaction holds retention back.
                        p.offsets().last_stable_offset,
                    ) {
                        Some(point) => log.delete_before(point).map(|_| {
                            p.forget_transactions_before(point);
                            Some(point)
                        }),
                        None => Ok(None),
                    },
                );
            match result {
                Ok(Some(point)) => {
                    info!(topic = %p.topic, partition = p.key.partition, log_start = point, "retention")
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.key.partition, "retention failed: {e}")
                }
            }
        }
    }

    /// Stores every partition's high watermark and producer-state snapshot (each second,
    /// and at shutdown), so a restart neither re-exposes nor rescans much.
    pub fn checkpoint_partitions(&self) {
        let now_ms = now_ms();
        for p in self.all_partitions() {
            if let Err(e) = p.checkpoint_high_watermark() {
                warn!(topic = %p.topic, partition = p.key.partition, "cannot checkpoint the high watermark: {e}");
            }
            if let Err(e) = p.snapshot_producers(now_ms) {
                warn!(topic = %p.topic, partition = p.key.partition, "cannot snapshot producer state: {e}");
            }
        }
    }

    /// Fsyncs the storage (the interval flush, and at shutdown).
    pub async fn flush(&self) -> Result<(), BrokerError> {
        match self.storage.flusher() {
            Some(f) => f
                .flush()
                .await
                .map_err(|e| BrokerError::Storage(e.to_string())),
            None => Ok(()),
        }
    }
}
