//! A replica's follower side: what it does with the answers of the leader it follows
//! (batches, truncations, high watermarks), each applied only while that leadership
//! lasts, and the truncation rules (never below the high watermark).

use std::sync::atomic::Ordering;
use std::sync::RwLockReadGuard;

use rill_common::record::BatchHeader;

use super::{producers_of, Leadership, Partition, Role};
use crate::divergence::check_truncation;
use crate::BrokerError;

impl Partition {
    /// Follower: whether it must truncate before fetching, and clears the flag.
    pub fn take_truncation_need(&self) -> bool {
        self.needs_truncation.swap(false, Ordering::SeqCst)
    }

    pub fn require_truncation(&self) {
        self.needs_truncation.store(true, Ordering::SeqCst);
    }

    /// The leadership this replica follows now, if it follows one.
    pub fn following(&self) -> Option<Leadership> {
        let role = self.role();
        let leader = role.leader.filter(|l| *l != self.broker_id)?;
        Some(Leadership {
            leader,
            leader_epoch: role.leader_epoch,
        })
    }

    /// The role, if it still follows `from`; held while a fetched answer is applied, so
    /// a role change waits for it and every later answer of `from` is dropped.
    fn role_following(&self, from: Leadership) -> Option<RwLockReadGuard<'_, Role>> {
        let role = self.role();
        (role.leader == Some(from.leader) && role.leader_epoch == from.leader_epoch).then_some(role)
    }

    /// Follower: appends a batch fetched from `from`. False (nothing appended) when the
    /// role moved on since the fetch was sent.
    pub fn append_fetched(&self, from: Leadership, batch: &[u8]) -> Result<bool, BrokerError> {
        let Some(_role) = self.role_following(from) else {
            return Ok(false);
        };
        self.append_replicated(batch)?;
        Ok(true)
    }

    /// Follower: cuts the log at `target` as `from` asked (a divergent suffix). Refused,
    /// with an ERROR, when the cut would drop records below this replica's high
    /// watermark: committed records are never given up because a leader lacks them,
    /// unless an operator's unclean election came after them. False when the role moved
    /// on since `from` answered.
    pub fn truncate_following(&self, from: Leadership, target: u64) -> Result<bool, BrokerError> {
        let Some(role) = self.role_following(from) else {
            return Ok(false);
        };
        let log_end = self.log.log_end_offset();
        if target >= log_end {
            return Ok(true);
        }
        let latest_epoch = self.log.latest_epoch();
        if let Err(hw) = check_truncation(
            target,
            self.high_watermark(),
            latest_epoch,
            role.unclean_leader_epoch,
        ) {
            let mut refused = self
                .truncation_refused
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *refused = Some(from);
            tracing::error!(topic = %self.topic, partition = self.key.partition, leader = from.leader,
                leader_epoch = from.leader_epoch, target, high_watermark = hw, log_end,
                "refusing to truncate below the high watermark: the leader lacks committed records; \
                 this replica keeps them (an unclean election would discard them)");
            return Err(BrokerError::TruncationRefused {
                target,
                high_watermark: hw,
            });
        }
        tracing::info!(topic = %self.topic, partition = self.key.partition, from = log_end, to = target,
            leader = from.leader, "truncating divergent suffix");
        self.truncate_to(target)?;
        Ok(true)
    }

    /// Whether this replica refused the truncation `from` asked for.
    pub fn truncation_refused_by(&self, from: Leadership) -> bool {
        *self
            .truncation_refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            == Some(from)
    }

    /// Follower: what it appended from `from` up to `next` is on disk (per the flush
    /// policy). Should this replica lead next, its high watermark counts its log as
    /// durable up to there, not only up to where it was when it opened: without this a
    /// new leader's high watermark stays below records acknowledged under the previous
    /// one until it takes a write of its own.
    pub fn mark_fetched_durable(&self, from: Leadership, next: u64) {
        let Some(_role) = self.role_following(from) else {
            return;
        };
        let durable = next.min(self.log.log_end_offset());
        self.durable_log_end.fetch_max(durable, Ordering::SeqCst);
    }

    /// Follower: `from`'s high watermark, bounded by what this replica holds.
    pub fn follow_high_watermark(&self, from: Leadership, leader_hw: u64) {
        let Some(_role) = self.role_following(from) else {
            return;
        };
        let bounded = leader_hw.min(self.log.log_end_offset());
        self.high_watermark.fetch_max(bounded, Ordering::SeqCst);
    }

    /// Follower: records the leader deleted (DeleteRecords, retention) go here too, up to
    /// this replica's high watermark.
    pub fn follow_log_start(
        &self,
        from: Leadership,
        leader_log_start: u64,
    ) -> Result<(), BrokerError> {
        let Some(_role) = self.role_following(from) else {
            return Ok(());
        };
        let target = leader_log_start.min(self.high_watermark.load(Ordering::SeqCst));
        if target > self.log.log_start_offset() {
            self.log.delete_before(target)?;
        }
        Ok(())
    }

    /// Follower: after truncating, the high watermark cannot exceed the log end.
    pub fn clamp_high_watermark(&self) {
        let log_end = self.log.log_end_offset();
        self.high_watermark.fetch_min(log_end, Ordering::SeqCst);
        self.durable_log_end.fetch_min(log_end, Ordering::SeqCst);
    }

    /// Follower: appends a batch copied from the leader (producer state follows, so
    /// this replica can lead without rescanning its log).
    pub fn append_replicated(&self, batch: &[u8]) -> Result<BatchHeader, BrokerError> {
        let mut producers = self.producers();
        let header = self.log.append_replicated(batch)?;
        if let Some(aborted) = Self::record_replicated(&mut producers, &header, batch) {
            self.log.put_aborted(&aborted)?;
        }
        Ok(header)
    }

    /// Follower: cuts the log at `offset` and rebuilds the producer state from what is left.
    pub fn truncate_to(&self, offset: u64) -> Result<(), BrokerError> {
        let mut producers = self.producers();
        self.log.truncate_to(offset)?;
        // The log dropped a snapshot past the cut; write the next one whatever the end.
        self.producer_snapshot_at.store(u64::MAX, Ordering::SeqCst);
        let rebuilt = producers_of(&self.log, Some(producers.transactions()));
        *producers = rebuilt;
        drop(producers);
        self.clamp_high_watermark();
        Ok(())
    }
}
