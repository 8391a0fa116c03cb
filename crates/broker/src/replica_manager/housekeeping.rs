//! Periodic work of the broker: ISR change proposals, retention, checkpoints (high
//! watermarks, producer snapshots) and the interval flush.

use std::time::Duration;

use rill_common::record::BatchHeader;
use rill_metadata::controller::isr::AlterPartition;
use tracing::{info, warn};

use crate::log::PartitionLog;
use crate::partition::{retention_point, PartitionConfig, RetentionCheck};
use crate::BrokerError;

use super::{now_ms, ReplicaManager};

impl ReplicaManager {
    /// ISR changes the partitions this broker (at `broker_epoch`) leads need.
    pub fn isr_changes(&self, lag_max: Duration, broker_epoch: u64) -> Vec<AlterPartition> {
        let mut changes = Vec::new();
        let now = std::time::Instant::now();
        self.visit_partitions(|p| {
            if let Some((role, isr)) = p.isr_proposal(lag_max, now) {
                changes.push(AlterPartition {
                    broker_id: self.broker_id,
                    broker_epoch,
                    topic: p.topic.clone(),
                    partition: p.key.partition,
                    leader_epoch: role.leader_epoch as u64,
                    partition_epoch: role.partition_epoch,
                    isr,
                });
            }
        });
        changes
    }

    /// The controller refused `change` (wrote nothing for it).
    pub fn isr_change_refused(&self, change: &AlterPartition) {
        if let Some(p) = self.partition(&change.topic, change.partition) {
            p.isr_proposal_refused(change.partition_epoch);
        }
    }

    /// Applies `retention.ms` and `retention.bytes` to every replica. A replica whose
    /// last check still holds (nothing could expire yet, the log within its bytes) is
    /// not read. Nothing while the store is failing.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for p in self.all_partitions() {
            if self.storage_health.is_failing() {
                return;
            }
            let config = p.role().config.clone();
            if config.retention_ms < 0 && config.retention_bytes < 0 {
                continue;
            }
            if p.retention_check_holds(&config, now) {
                continue;
            }
            let log = p.log();
            // An open transaction holds retention back.
            let bound = p.offsets().last_stable_offset;
            let result = retention_scan(log, &config, now, bound).and_then(|(headers, point)| {
                if let Some(point) = point {
                    log.delete_before(point)?;
                    p.forget_transactions_before(point);
                }
                let log_start = point.unwrap_or(log.log_start_offset());
                p.set_retention_checked(RetentionCheck::after(&headers, log_start, &config, now));
                Ok(point)
            });
            self.storage_health.observe(&result);
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
}

/// Reads the headers of a log from its start in growing windows, until a window holds a
/// batch that retention keeps (or the log's end), and where retention cuts it: a check
/// reads the few batches it cuts and one more, not the log's first 10,000 batches.
fn retention_scan(
    log: &PartitionLog,
    config: &PartitionConfig,
    now_ms: i64,
    bound: u64,
) -> Result<(Vec<BatchHeader>, Option<u64>), BrokerError> {
    let mut window = 8;
    loop {
        let headers = log.headers(log.log_start_offset(), window)?;
        let point = retention_point(&headers, log.size_bytes(), now_ms, config, bound);
        let cuts_all = point.is_some() && point == headers.last().map(|h| h.next_offset());
        if !cuts_all || headers.len() < window {
            return Ok((headers, point));
        }
        window = window.saturating_mul(4);
    }
}

impl ReplicaManager {
    /// Stores every partition's high watermark and producer-state snapshot (each second,
    /// and at shutdown), so a restart neither re-exposes nor rescans much. Nothing while
    /// the store is failing: every write would fail, and that was reported once.
    pub fn checkpoint_partitions(&self) {
        let now_ms = now_ms();
        for p in self.all_partitions() {
            if self.storage_health.is_failing() {
                return;
            }
            let checkpointed = p.checkpoint_high_watermark();
            self.storage_health.observe(&checkpointed);
            if let Err(e) = checkpointed {
                warn!(topic = %p.topic, partition = p.key.partition, "cannot checkpoint the high watermark: {e}");
            }
            let snapshot = p.snapshot_producers(now_ms);
            self.storage_health.observe(&snapshot);
            if let Err(e) = snapshot {
                warn!(topic = %p.topic, partition = p.key.partition, "cannot snapshot producer state: {e}");
            }
        }
    }

    /// Fsyncs the storage (the interval flush, and at shutdown).
    pub async fn flush(&self) -> Result<(), BrokerError> {
        let flushed = match self.storage.flusher() {
            Some(f) => f
                .flush()
                .await
                .map_err(|e| BrokerError::Storage(e.to_string())),
            None => Ok(()),
        };
        self.storage_health.observe(&flushed);
        flushed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rill_common::record::RecordBatchBuilder;

    use super::*;
    use crate::log::MemoryBackend;

    fn log_of(timestamps: impl Iterator<Item = i64>) -> PartitionLog {
        let (log, _) = PartitionLog::open(Box::new(Arc::new(MemoryBackend::default())))
            .unwrap_or_else(|e| panic!("open: {e}"));
        for ts in timestamps {
            let mut b = RecordBatchBuilder::new();
            b.push(None, Some(b"0123456789"), ts);
            log.append_as_leader(&mut b.build(), 0)
                .unwrap_or_else(|e| panic!("append: {e}"));
        }
        log
    }

    fn by_time(retention_ms: i64) -> PartitionConfig {
        PartitionConfig {
            max_message_bytes: 1 << 20,
            retention_ms,
            retention_bytes: -1,
            min_insync_replicas: 1,
        }
    }

    #[test]
    fn a_retention_check_reads_what_it_cuts_and_little_more() {
        // 1,000 batches; the first 100 are old.
        let log = log_of((0..1_000).map(|i| if i < 100 { 0 } else { 10_000 }));
        let (headers, point) = retention_scan(&log, &by_time(5_000), 10_000, 1_000)
            .unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!(point, Some(100));
        assert!(
            headers.len() < 1_000 && headers.iter().any(|h| h.base_offset == 100),
            "read {} headers",
            headers.len()
        );
        // Nothing old: the first window is enough.
        let log = log_of((0..1_000).map(|_| 10_000));
        let (headers, point) = retention_scan(&log, &by_time(5_000), 10_000, 1_000)
            .unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!((point, headers.len()), (None, 8));
        // Everything old, bounded by the high watermark at 600.
        let log = log_of((0..1_000).map(|_| 0));
        let (_, point) = retention_scan(&log, &by_time(5_000), 10_000, 600)
            .unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!(point, Some(600));
        // Everything old: all of it goes.
        let (_, point) = retention_scan(&log, &by_time(5_000), 10_000, 1_000)
            .unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!(point, Some(1_000));
    }
}
