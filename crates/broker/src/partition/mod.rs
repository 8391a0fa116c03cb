//! One partition replica on this broker: its log, its role as the metadata assigns it,
//! and its high watermark.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use rill_common::record::{read_control, BatchHeader, ControlMarker};
use rill_common::BrokerId;
use tokio::sync::watch;

use crate::log::{PartitionKey, PartitionLog};
use crate::produce_validation::validate_produced;
use crate::producer_state::{ProducerStateTable, SequenceCheck};
use crate::transactions::TransactionIndex;
use crate::BrokerError;

mod follower;
mod isr;
mod reads;
mod retention;
mod transactions;

pub use reads::consumer_bound;
pub use retention::{retention_point, RetentionCheck};

/// Where a producer's batch is in the log: just appended, or (a retry of an
/// idempotent producer's batch) where it was stored the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: u64,
    pub next_offset: u64,
    pub duplicate: bool,
}

/// The topic configs a partition enforces (Kafka's names and meanings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionConfig {
    pub max_message_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub min_insync_replicas: usize,
}

/// The partition's assignment as of the latest metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub leader: Option<BrokerId>,
    pub leader_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub partition_epoch: u64,
    /// The leader epoch an operator's unclean election began, if any: replicas whose
    /// data predates it may truncate below their high watermark to follow.
    pub unclean_leader_epoch: Option<i32>,
    /// This broker is a replica a reassignment is adding: it catches up under the
    /// replication throttle.
    pub adding: bool,
    pub config: PartitionConfig,
}

/// The leadership a follower fetch was sent to. Its answer (records, a truncation, a
/// high watermark) applies only while the role still names that leader and epoch: a
/// deposed leader's late answer is dropped, never appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub leader: BrokerId,
    pub leader_epoch: i32,
}

/// What the leader knows of a follower: its log end (from its last fetch) and when it
/// last asked for everything the leader had.
#[derive(Debug, Clone, Copy)]
struct FollowerState {
    log_end: u64,
    last_caught_up: Instant,
}

pub struct Partition {
    pub topic: String,
    pub key: PartitionKey,
    broker_id: BrokerId,
    log: PartitionLog,
    role: RwLock<Role>,
    high_watermark: AtomicU64,
    /// The leader's own log end that is on disk (per the flush policy).
    durable_log_end: AtomicU64,
    followers: Mutex<HashMap<BrokerId, FollowerState>>,
    /// A follower must truncate by leader epoch before it fetches (set on role changes).
    needs_truncation: AtomicBool,
    /// Leader: its log end when it took this leader epoch. A replica joins the ISR only
    /// once it holds that much: the high watermark a new leader starts with may lag
    /// what the previous leader committed (Kafka's KAFKA-7128 rule).
    leader_epoch_start_offset: AtomicU64,
    /// The ISR additions proposed at the current partition epoch (see isr.rs).
    isr_change_pending: Mutex<Option<isr::PendingIsrChange>>,
    /// The leadership whose truncation below the high watermark this replica refused:
    /// it does not fetch from it (and so leaves its ISR) until the role changes.
    truncation_refused: Mutex<Option<Leadership>>,
    /// Idempotent producers' sequences; the lock also makes check-then-append atomic.
    producers: Mutex<ProducerStateTable>,
    /// The log end the last stored producer snapshot covers.
    producer_snapshot_at: AtomicU64,
    /// The high watermark last stored (checkpoints write only a change).
    checkpointed_high_watermark: AtomicU64,
    /// What the last retention check found (nothing to do until it no longer holds).
    retention_checked: Mutex<Option<RetentionCheck>>,
    /// Bumped when someone waiting on this partition alone may proceed: new data, a
    /// higher high watermark, a role change. Fetches and acks=all writes wait on the
    /// partitions they touch, so a write wakes only those.
    changed: watch::Sender<u64>,
}

/// Without a usable snapshot, how far back (in offsets) producer state is rebuilt from:
/// a producer silent for longer is forgotten (UNKNOWN_PRODUCER_ID makes its client start
/// a new id), and opening a partition never reads a whole large log.
const PRODUCER_STATE_WINDOW: u64 = 100_000;

/// Kafka's `producer.id.expiration.ms` default: a producer silent for a day is forgotten
/// when the next snapshot is taken.
const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// The producer table of a log: its snapshot plus the batches after it, or (no usable
/// snapshot) the batch headers of its recent tail. The aborted transactions below where
/// the rebuild starts come from the log's stored index (and `earlier`, the table before
/// a truncation), so read_committed readers of old data still skip them; those the
/// rebuild found are stored too (a log written before the index existed).
fn producers_of(log: &PartitionLog, earlier: Option<&TransactionIndex>) -> ProducerStateTable {
    let window = || {
        let from = log
            .log_end_offset()
            .saturating_sub(PRODUCER_STATE_WINDOW)
            .max(log.log_start_offset());
        (from, ProducerStateTable::default())
    };
    let (from, mut table) = match log.producer_snapshot() {
        Ok(Some((at, bytes))) => match ProducerStateTable::decode(&bytes) {
            Ok(table) => (at, table),
            Err(e) => {
                tracing::warn!("ignoring the producer snapshot, rebuilding from the log: {e}");
                window()
            }
        },
        Ok(None) => window(),
        Err(e) => {
            tracing::warn!("cannot read the producer snapshot, rebuilding from the log: {e}");
            window()
        }
    };
    match log.headers(from, usize::MAX) {
        Ok(headers) => table.replay(&headers, |h| stored_marker(log, h)),
        Err(e) => {
            tracing::warn!("cannot rebuild producer state from the log: {e}");
            return ProducerStateTable::default();
        }
    }
    if let Some(earlier) = earlier {
        table.keep_aborted_before(earlier, from);
    }
    match log.aborted_transactions() {
        Ok(stored) => {
            let stored_markers: HashSet<u64> = stored.iter().map(|a| a.last_offset).collect();
            for found in table.transactions().aborted() {
                if !stored_markers.contains(&found.last_offset) {
                    if let Err(e) = log.put_aborted(found) {
                        tracing::warn!("cannot store an aborted transaction: {e}");
                    }
                }
            }
            table.keep_aborted_before(&TransactionIndex::of_aborted(stored), from);
        }
        Err(e) => tracing::warn!("cannot read the stored aborted transactions: {e}"),
    }
    table
}

/// The marker of the stored control batch `header` describes (`None` if unreadable:
/// its producer's transaction then stays open here, which holds the LSO back rather
/// than expose aborted records).
fn stored_marker(log: &PartitionLog, header: &BatchHeader) -> Option<ControlMarker> {
    let batch = log
        .read(header.base_offset, header.next_offset(), 1)
        .ok()?
        .into_iter()
        .next()?;
    match read_control(header, &batch) {
        Ok(marker) => marker,
        Err(e) => {
            tracing::warn!(offset = header.base_offset, "unreadable control batch: {e}");
            None
        }
    }
}

/// Offsets of a partition replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: u64,
    /// min(first offset of an open transaction, high watermark): read_committed reads
    /// stop here.
    pub last_stable_offset: u64,
    pub high_watermark: u64,
    pub log_end: u64,
}

impl Partition {
    pub fn new(
        topic: String,
        key: PartitionKey,
        broker_id: BrokerId,
        log: PartitionLog,
        role: Role,
    ) -> Self {
        let log_end = log.log_end_offset();
        let checkpoint = log.high_watermark_checkpoint().unwrap_or(0);
        let producers = Mutex::new(producers_of(&log, None));
        let partition = Self {
            topic,
            key,
            broker_id,
            log,
            role: RwLock::new(role.clone()),
            high_watermark: AtomicU64::new(checkpoint.min(log_end)),
            durable_log_end: AtomicU64::new(log_end),
            followers: Mutex::default(),
            needs_truncation: AtomicBool::new(false),
            leader_epoch_start_offset: AtomicU64::new(0),
            isr_change_pending: Mutex::default(),
            truncation_refused: Mutex::default(),
            producers,
            producer_snapshot_at: AtomicU64::new(u64::MAX),
            checkpointed_high_watermark: AtomicU64::new(checkpoint),
            retention_checked: Mutex::default(),
            changed: watch::channel(0).0,
        };
        partition.on_role_change(None, &role);
        partition
    }

    fn followers(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, FollowerState>> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Becoming leader (or a new leader epoch) starts follower tracking afresh: every
    /// ISR follower gets a full lag period to report in, and the high watermark waits
    /// for their log ends. Becoming a follower means truncating by leader epoch first.
    fn on_role_change(&self, old: Option<&Role>, new: &Role) {
        let was_leader = old.is_some_and(|o| o.leader == Some(self.broker_id));
        let epoch_changed = old.is_none_or(|o| o.leader_epoch != new.leader_epoch);
        let leads = new.leader == Some(self.broker_id);
        if leads && (!was_leader || epoch_changed) {
            self.leader_epoch_start_offset
                .store(self.log.log_end_offset(), Ordering::SeqCst);
            let now = Instant::now();
            let mut followers = self.followers();
            followers.clear();
            for b in new.replicas.iter().filter(|b| **b != self.broker_id) {
                followers.insert(
                    *b,
                    FollowerState {
                        log_end: 0,
                        last_caught_up: now,
                    },
                );
            }
        }
        if !leads && epoch_changed && new.replicas.contains(&self.broker_id) {
            self.needs_truncation.store(true, Ordering::SeqCst);
        }
        self.maybe_advance_high_watermark();
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn role(&self) -> RwLockReadGuard<'_, Role> {
        self.role.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_role(&self, role: Role) {
        let old = std::mem::replace(
            &mut *self.role.write().unwrap_or_else(|e| e.into_inner()),
            role.clone(),
        );
        self.on_role_change(Some(&old), &role);
        self.notify_changed();
    }

    /// A receiver that sees every later `notify_changed`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wakes whoever waits on this partition (readers, acks=all writers).
    pub fn notify_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn is_leader(&self) -> bool {
        self.role().leader == Some(self.broker_id)
    }

    pub fn offsets(&self) -> Offsets {
        let high_watermark = self.high_watermark();
        Offsets {
            log_start: self.log.log_start_offset(),
            last_stable_offset: self.last_stable_offset(high_watermark),
            high_watermark,
            log_end: self.log.log_end_offset(),
        }
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::SeqCst)
    }

    /// Moves the high watermark up to `offset` (never down); true if it moved.
    fn advance_high_watermark(&self, offset: u64) -> bool {
        let offset = offset.min(self.log.log_end_offset());
        self.high_watermark.fetch_max(offset, Ordering::SeqCst) < offset
    }

    /// The leader's write up to `next` is on disk.
    pub fn mark_durable(&self, next: u64) -> bool {
        self.durable_log_end.fetch_max(next, Ordering::SeqCst);
        self.maybe_advance_high_watermark()
    }

    pub fn not_leader(&self) -> BrokerError {
        let role = self.role();
        BrokerError::NotLeader(format!(
            "broker {} does not lead {}-{} (leader {:?}, epoch {})",
            self.broker_id, self.topic, self.key.partition, role.leader, role.leader_epoch
        ))
    }

    fn producers(&self) -> std::sync::MutexGuard<'_, ProducerStateTable> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates and appends a producer's batch as the leader. An idempotent producer's
    /// retry of a stored batch is not appended again: its original offsets come back.
    pub fn append_as_leader(
        &self,
        batch: &mut [u8],
        acks_all: bool,
    ) -> Result<Appended, BrokerError> {
        self.append_verified(batch, acks_all, None)
    }

    /// As `append_as_leader`; a transaction's first write here needs the guard of its
    /// verification with the coordinator (`begin_verification`), still in place.
    pub fn append_verified(
        &self,
        batch: &mut [u8],
        acks_all: bool,
        verification: Option<u64>,
    ) -> Result<Appended, BrokerError> {
        let role = self.role().clone();
        if role.leader != Some(self.broker_id) {
            return Err(self.not_leader());
        }
        if batch.len() > role.config.max_message_bytes {
            return Err(BrokerError::MessageTooLarge {
                size: batch.len(),
                max: role.config.max_message_bytes,
            });
        }
        let sent = validate_produced(batch)?;
        if acks_all && role.isr.len() < role.config.min_insync_replicas {
            return Err(BrokerError::NotEnoughReplicas(format!(
                "ISR {:?} is smaller than min.insync.replicas {}",
                role.isr, role.config.min_insync_replicas
            )));
        }
        let mut producers = self.producers();
        if let SequenceCheck::Duplicate {
            base_offset,
            next_offset,
        } = producers.check(&sent)?
        {
            return Ok(Appended {
                base_offset,
                next_offset,
                duplicate: true,
            });
        }
        producers.check_verified(&sent, verification)?;
        let header = self.log.append_as_leader(batch, role.leader_epoch)?;
        producers.record(&header);
        Ok(Appended {
            base_offset: header.base_offset,
            next_offset: header.next_offset(),
            duplicate: false,
        })
    }

    /// The last retention check, if it still says nothing can be cut now.
    pub fn retention_check_holds(&self, config: &PartitionConfig, now_ms: i64) -> bool {
        let checked = *self
            .retention_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        checked.is_some_and(|c| {
            c.still_holds(
                self.log.log_start_offset(),
                self.log.size_bytes(),
                config,
                now_ms,
            )
        })
    }

    pub fn set_retention_checked(&self, check: Option<RetentionCheck>) {
        *self
            .retention_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = check;
    }

    /// Stores the high watermark if it moved since it was last stored: an idle
    /// partition writes nothing.
    pub fn checkpoint_high_watermark(&self) -> Result<(), BrokerError> {
        let hw = self.high_watermark();
        if self.checkpointed_high_watermark.load(Ordering::SeqCst) == hw {
            return Ok(());
        }
        self.log.checkpoint_high_watermark(hw)?;
        self.checkpointed_high_watermark.store(hw, Ordering::SeqCst);
        Ok(())
    }

    /// Stores the producer table (after expiring producers silent since before
    /// `now_ms - PRODUCER_ID_EXPIRATION_MS`) if the log moved since the last snapshot.
    pub fn snapshot_producers(&self, now_ms: i64) -> Result<(), BrokerError> {
        let mut producers = self.producers();
        // Appends of idempotent batches hold this lock, so the table matches this end.
        let at = self.log.log_end_offset();
        if self.producer_snapshot_at.load(Ordering::SeqCst) == at {
            return Ok(());
        }
        producers.expire_older_than(now_ms.saturating_sub(PRODUCER_ID_EXPIRATION_MS));
        self.log.put_producer_snapshot(at, &producers.encode())?;
        self.producer_snapshot_at.store(at, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod lookup_tests {
    use rill_common::record::RecordBatchBuilder;

    use super::*;
    use crate::log::{LogStorage, MemoryStorage};
    use crate::replica_manager::now_ms;

    fn leader_partition() -> Partition {
        leader_partition_in(&MemoryStorage::default())
    }

    /// A leader of partition t-0 over `storage` (opening it again reopens the same log).
    fn leader_partition_in(storage: &MemoryStorage) -> Partition {
        let key = PartitionKey {
            topic_id: "t".into(),
            partition: 0,
        };
        let (log, _) = storage.open(&key).unwrap_or_else(|e| panic!("{e}"));
        Partition::new("t".into(), key, 1, log, test_role(1, 0, &[1], &[1], 1))
    }

    #[test]
    fn offsets_by_timestamp_find_the_first_record_at_or_after_it() {
        let p = leader_partition();
        for timestamps in [[100, 200], [300, 250], [400, 500]] {
            let mut b = RecordBatchBuilder::new();
            for ts in timestamps {
                b.push(None, Some(b"v"), ts);
            }
            let mut batch = b.build();
            assert!(p.append_as_leader(&mut batch, false).is_ok());
            p.mark_durable(p.log().log_end_offset());
        }
        let find = |ts| p.offset_for_timestamp(ts).ok().flatten();
        assert_eq!(find(0), Some((0, 100)));
        assert_eq!(find(150), Some((1, 200)));
        assert_eq!(
            find(260),
            Some((2, 300)),
            "the first record at or after, in offset order"
        );
        assert_eq!(find(450), Some((5, 500)));
        assert_eq!(find(501), None);
    }

    #[test]
    fn appends_enforce_leadership_size_and_min_isr() {
        let p = leader_partition();
        let mut big = RecordBatchBuilder::new();
        big.push(None, Some(&vec![0u8; 2 << 20]), 1);
        let code = |r: Result<Appended, BrokerError>| r.err().map(|e| e.code());
        assert_eq!(
            code(p.append_as_leader(&mut big.build(), false)),
            Some(rill_common::ErrorCode::MessageTooLarge)
        );
        let mut role = p.role().clone();
        role.config.min_insync_replicas = 2;
        p.set_role(role.clone());
        let mut small = RecordBatchBuilder::new();
        small.push(None, Some(b"x"), 1);
        assert_eq!(
            code(p.append_as_leader(&mut small.build(), true)),
            Some(rill_common::ErrorCode::NotEnoughReplicas)
        );
        assert!(
            p.append_as_leader(&mut small.build(), false).is_ok(),
            "acks=1 does not need the ISR"
        );
        role.leader = Some(2);
        p.set_role(role);
        assert_eq!(
            code(p.append_as_leader(&mut small.build(), false)),
            Some(rill_common::ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(
            p.log().log_end_offset(),
            1,
            "rejected batches were not stored"
        );
    }

    fn idempotent_batch(producer_id: i64, base_sequence: i32, records: usize) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new();
        b.producer_id = producer_id;
        b.producer_epoch = 0;
        b.base_sequence = base_sequence;
        for _ in 0..records {
            b.push(None, Some(b"v"), now_ms());
        }
        b.build()
    }

    fn append(p: &Partition, producer_id: i64, base_sequence: i32) -> Option<Appended> {
        p.append_as_leader(&mut idempotent_batch(producer_id, base_sequence, 2), false)
            .ok()
    }

    #[test]
    fn reopening_loads_the_producer_snapshot_and_replays_only_what_follows_it() {
        let storage = MemoryStorage::default();
        let p = leader_partition_in(&storage);
        for sequence in [0, 2] {
            assert!(append(&p, 7, sequence).is_some_and(|a| !a.duplicate));
        }
        assert!(p.snapshot_producers(now_ms()).is_ok());
        // A producer only the snapshot knows proves it is read on reopening.
        let mut table = ProducerStateTable::decode(
            &p.log()
                .producer_snapshot()
                .ok()
                .flatten()
                .map(|(_, t)| t)
                .unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut only_in_snapshot =
            BatchHeader::validate(&idempotent_batch(99, 0, 1)).unwrap_or_else(|e| panic!("{e}"));
        only_in_snapshot.max_timestamp = now_ms();
        table.record(&only_in_snapshot);
        assert!(p.log().put_producer_snapshot(4, &table.encode()).is_ok());
        assert!(append(&p, 7, 4).is_some_and(|a| a.base_offset == 4 && !a.duplicate));
        drop(p);

        let p = leader_partition_in(&storage);
        let retry = |pid, sequence| append(&p, pid, sequence).map(|a| (a.base_offset, a.duplicate));
        assert_eq!(retry(7, 0), Some((0, true)), "from the snapshot");
        assert_eq!(retry(7, 4), Some((4, true)), "replayed after the snapshot");
        let only = p.append_as_leader(&mut idempotent_batch(99, 0, 1), false);
        assert!(only.is_ok_and(|a| a.duplicate), "the snapshot was loaded");
        assert_eq!(p.log().log_end_offset(), 6);

        // Cutting the log below the snapshot drops it: the table comes from the log.
        assert!(p.truncate_to(2).is_ok());
        assert!(p.log().producer_snapshot().is_ok_and(|s| s.is_none()));
        let again = p.append_as_leader(&mut idempotent_batch(99, 0, 1), false);
        assert!(again.is_ok_and(|a| !a.duplicate && a.base_offset == 2));
        assert_eq!(retry(7, 0), Some((0, true)));
    }

    #[test]
    fn an_aborted_transaction_below_the_rebuild_window_is_known_after_reopening_without_a_snapshot()
    {
        use crate::transactions::AbortedTxn;
        use rill_common::record::{ControlMarker, ControlType};
        let storage = MemoryStorage::default();
        let p = leader_partition_in(&storage);
        let mut b = RecordBatchBuilder::new();
        b.producer_id = 5;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.transactional = true;
        for _ in 0..2 {
            b.push(None, Some(b"aborted"), now_ms());
        }
        let mut txn = b.build();
        let guard = p.begin_verification(5);
        assert!(p.append_verified(&mut txn, false, Some(guard)).is_ok());
        let abort = ControlMarker {
            kind: ControlType::Abort,
            coordinator_epoch: 1,
        };
        assert!(p
            .append_marker(5, 0, abort, now_ms())
            .is_ok_and(|a| a.base_offset == 2));
        // More than the rebuild window after it, and no producer snapshot.
        let mut big = RecordBatchBuilder::new();
        for _ in 0..=PRODUCER_STATE_WINDOW {
            big.push(None, Some(b"v"), now_ms());
        }
        assert!(p.append_as_leader(&mut big.build(), false).is_ok());
        let expected = vec![AbortedTxn {
            producer_id: 5,
            first_offset: 0,
            last_offset: 2,
        }];
        assert_eq!(p.aborted_between(0, 3), expected);
        drop(p);

        let p = leader_partition_in(&storage);
        assert!(p.log().producer_snapshot().is_ok_and(|s| s.is_none()));
        assert_eq!(
            p.aborted_between(0, 3),
            expected,
            "read_committed readers of the old data still skip the aborted records"
        );
    }

    #[test]
    fn a_damaged_producer_snapshot_falls_back_to_the_log() {
        let storage = MemoryStorage::default();
        let p = leader_partition_in(&storage);
        assert!(append(&p, 7, 0).is_some());
        assert!(p.log().put_producer_snapshot(2, b"not a snapshot").is_ok());
        drop(p);
        let p = leader_partition_in(&storage);
        assert_eq!(append(&p, 7, 0).map(|a| a.duplicate), Some(true));
    }
}

/// A role for tests: `leader` at `leader_epoch`, default configs but `min_isr`.
#[cfg(test)]
fn test_role(
    leader: BrokerId,
    leader_epoch: i32,
    replicas: &[BrokerId],
    isr: &[BrokerId],
    min_isr: usize,
) -> Role {
    Role {
        leader: Some(leader),
        leader_epoch,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        partition_epoch: 0,
        unclean_leader_epoch: None,
        adding: false,
        config: PartitionConfig {
            max_message_bytes: 1 << 20,
            retention_ms: -1,
            retention_bytes: -1,
            min_insync_replicas: min_isr,
        },
    }
}

#[cfg(test)]
mod follower_tests;
