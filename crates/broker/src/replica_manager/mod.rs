//! The replica manager: opens the partitions the metadata assigns to this broker, keeps
//! their roles current, and serves produce, fetch, list offsets and retention.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rill_common::BrokerId;
use rill_metadata::controller::config;
use rill_metadata::{MetadataState, Topic};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::log::{LogStorage, PartitionKey};
use crate::partition::{Partition, PartitionConfig, Role};
use crate::txn_verifier::TxnVerifier;
use crate::BrokerError;

mod fetch;
mod housekeeping;
mod offsets;
mod produce;
mod stats;
mod transactions;

pub use fetch::{FetchLimits, FetchPartitionRequest, FetchPartitionResult, Fetched};
pub use offsets::ReplicaDescription;
pub use produce::{Acks, Produced};
pub use stats::ReplicationStats;

/// When an acknowledged write is on disk (`log.flush.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Acknowledge only after the fsync that covers the write (group commit).
    Group,
    /// Acknowledge at once; a timer fsyncs every interval.
    Interval(Duration),
}

/// The longest a request may wait on its own account (a produce timeout, a fetch's max
/// wait), on either protocol.
pub const MAX_REQUEST_WAIT: Duration = Duration::from_secs(30);

/// A requested wait in milliseconds, bounded by [`MAX_REQUEST_WAIT`] (negative = 0).
pub fn request_wait(requested_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(requested_ms).unwrap_or(0)).min(MAX_REQUEST_WAIT)
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
    /// Bumped when a partition of this broker is opened or closed or its leadership
    /// moves (not on ISR changes): the follower fetchers plan their fetches again at
    /// once instead of waiting out a poll.
    roles_changed: watch::Sender<u64>,
    /// How often this broker became a partition's leader after opening it.
    leaderships_gained: AtomicU64,
    /// ISR changes of partitions this broker leads (whatever their cause).
    isr_shrinks: AtomicU64,
    isr_expands: AtomicU64,
    /// Verifies transactions' first writes with the coordinator (set by the node).
    txn_verifier: OnceLock<Arc<dyn TxnVerifier>>,
    /// Whether the partition store still takes writes.
    storage_health: crate::storage_health::StorageHealth,
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
            roles_changed: watch::channel(0).0,
            leaderships_gained: AtomicU64::new(0),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            txn_verifier: OnceLock::new(),
            storage_health: Default::default(),
        }
    }

    pub fn storage_health(&self) -> &crate::storage_health::StorageHealth {
        &self.storage_health
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

    /// A receiver that sees every later opening, closing or leadership move of a
    /// partition.
    pub fn subscribe_role_changes(&self) -> watch::Receiver<u64> {
        self.roles_changed.subscribe()
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Visits every partition in place, under the registry's read lock: for in-memory
    /// work only (no I/O), where cloning thousands of `Arc`s each time cost more than
    /// the work (a third of an idle node's CPU at 10,000 partitions).
    fn visit_partitions(&self, mut visit: impl FnMut(&Arc<Partition>)) {
        for p in self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            visit(p);
        }
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
                    adding: p.adding_replicas.contains(&self.broker_id),
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
        let mut moved = !gone.is_empty();
        for tp in gone {
            if let Some(p) = partitions.remove(&tp) {
                info!(topic = %tp.0, partition = tp.1, "closing and deleting replica");
                // Whoever waits on it learns it is gone.
                p.notify_changed();
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
                        moved |= old.leader != role.leader || old.leader_epoch != role.leader_epoch;
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
                        moved = true;
                    }
                    Err(e) => warn!(topic = %tp.0, partition = tp.1, "cannot open replica: {e}"),
                },
            }
        }
        drop(partitions);
        *self.metadata.write().unwrap_or_else(|e| e.into_inner()) = Some(state);
        if moved {
            self.roles_changed.send_modify(|n| *n = n.wrapping_add(1));
        }
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

    /// The partitions this broker follows, with their leaders.
    pub fn followed_partitions(&self) -> Vec<(BrokerId, Arc<Partition>)> {
        let mut followed = Vec::new();
        self.visit_partitions(|p| {
            if let Some(leader) = self.followed_leader(p) {
                followed.push((leader, p.clone()));
            }
        });
        followed
    }

    /// The leaders of the partitions this broker follows.
    pub fn followed_leaders(&self) -> HashSet<BrokerId> {
        let mut leaders = HashSet::new();
        self.visit_partitions(|p| leaders.extend(self.followed_leader(p)));
        leaders
    }

    /// The leader of `p` when it is another broker.
    fn followed_leader(&self, p: &Partition) -> Option<BrokerId> {
        p.role().leader.filter(|l| *l != self.broker_id)
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
}
