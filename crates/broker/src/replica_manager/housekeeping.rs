//! Periodic work of the broker: ISR change proposals, retention, checkpoints (high
//! watermarks, producer snapshots) and the interval flush.

use std::time::Duration;

use rill_metadata::controller::isr::AlterPartition;
use tracing::{info, warn};

use crate::partition::{retention_point, RetentionCheck};
use crate::BrokerError;

use super::{now_ms, ReplicaManager};

impl ReplicaManager {
    /// ISR changes the partitions this broker (at `broker_epoch`) leads need.
    pub fn isr_changes(&self, lag_max: Duration, broker_epoch: u64) -> Vec<AlterPartition> {
        self.all_partitions()
            .into_iter()
            .filter_map(|p| {
                let (role, isr) = p.isr_proposal(lag_max)?;
                Some(AlterPartition {
                    broker_id: self.broker_id,
                    broker_epoch,
                    topic: p.topic.clone(),
                    partition: p.key.partition,
                    leader_epoch: role.leader_epoch as u64,
                    partition_epoch: role.partition_epoch,
                    isr,
                })
            })
            .collect()
    }

    /// Applies `retention.ms` and `retention.bytes` to every replica. A replica whose
    /// last check still holds (nothing could expire yet, the log within its bytes) is
    /// not read.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for p in self.all_partitions() {
            let config = p.role().config.clone();
            if config.retention_ms < 0 && config.retention_bytes < 0 {
                continue;
            }
            if p.retention_check_holds(&config, now) {
                continue;
            }
            let log = p.log();
            let result = log
                .headers(log.log_start_offset(), 10_000)
                .and_then(|headers| {
                    let point = retention_point(
                        &headers,
                        log.size_bytes(),
                        now,
                        &config,
                        // An open transaction holds retention back.
                        p.offsets().last_stable_offset,
                    );
                    if let Some(point) = point {
                        log.delete_before(point)?;
                        p.forget_transactions_before(point);
                    }
                    let log_start = point.unwrap_or(log.log_start_offset());
                    p.set_retention_checked(RetentionCheck::after(
                        &headers, log_start, &config, now,
                    ));
                    Ok(point)
                });
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
