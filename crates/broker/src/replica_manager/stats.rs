//! Replication health of this broker, for metrics.

use std::sync::atomic::Ordering;

use rill_common::BrokerId;

use super::ReplicaManager;

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

impl ReplicaManager {
    pub fn replication_stats(&self) -> ReplicationStats {
        let mut stats = ReplicationStats {
            leaderships_gained: self.leaderships_gained.load(Ordering::Relaxed),
            isr_shrinks: self.isr_shrinks.load(Ordering::Relaxed),
            isr_expands: self.isr_expands.load(Ordering::Relaxed),
            ..Default::default()
        };
        self.visit_partitions(|p| {
            if !p.is_leader() {
                return;
            }
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
        });
        stats
    }
}
