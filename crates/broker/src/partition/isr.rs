//! The leader's side of replication: follower progress, the high watermark over the ISR,
//! and the ISR changes it proposes to the controller.
//!
//! The high watermark is computed over the *maximal* ISR (Kafka's rule since KIP-497):
//! the ISR in the metadata plus every replica a proposal at the current partition epoch
//! adds. The controller applies a proposal by compare-and-set on the partition epoch, so
//! a proposal can still be written long after it was sent (a deposed controller's entry
//! that the next Raft leader commits). Until the partition epoch moves on, a replica
//! proposed for the ISR may therefore become a member, and may then be elected: the high
//! watermark must not pass its log end. A removal needs no such care: the metadata ISR
//! still holds the replica until the removal is written.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rill_common::BrokerId;

use super::{FollowerState, Partition, Role};

/// The ISR proposals this leader made at one partition epoch.
#[derive(Debug)]
pub(super) struct PendingIsrChange {
    partition_epoch: u64,
    proposed_at: Instant,
    /// Every replica a proposal at `partition_epoch` that may still be written added to
    /// the metadata ISR.
    additions: Vec<BrokerId>,
    /// The controller refused the latest proposal (it wrote nothing for it).
    latest_refused: bool,
    /// An earlier proposal at this epoch got no answer: it may still be written.
    earlier_in_doubt: bool,
}

impl Partition {
    fn pending_isr_change(&self) -> std::sync::MutexGuard<'_, Option<PendingIsrChange>> {
        self.isr_change_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Replicas a proposal at `partition_epoch` added (empty once the epoch moved on).
    fn pending_isr_additions(&self, partition_epoch: u64) -> Vec<BrokerId> {
        self.pending_isr_change()
            .as_ref()
            .filter(|p| p.partition_epoch == partition_epoch)
            .map(|p| p.additions.clone())
            .unwrap_or_default()
    }

    /// Leader: the high watermark is the smallest log end over the maximal ISR (the
    /// leader's counts once durable). It stands still while the ISR is smaller than
    /// `min.insync.replicas` (KIP-966's strict min ISR), so every replica that leaves an
    /// ISR at or below that size holds everything up to the high watermark and stays
    /// eligible to lead. True if it moved.
    pub fn maybe_advance_high_watermark(&self) -> bool {
        // Lock order, here and in `isr_proposal`: role, pending proposal, followers.
        let role = self.role();
        let min_isr = role.config.min_insync_replicas.min(role.replicas.len());
        if role.leader != Some(self.broker_id) || role.isr.len() < min_isr {
            return false;
        }
        let pending = self.pending_isr_additions(role.partition_epoch);
        let followers = self.followers();
        let mut hw = self
            .durable_log_end
            .load(Ordering::SeqCst)
            .min(self.log.log_end_offset());
        for b in role
            .isr
            .iter()
            .chain(pending.iter())
            .filter(|b| **b != self.broker_id)
        {
            hw = hw.min(followers.get(b).map_or(0, |f| f.log_end));
        }
        drop(followers);
        drop(role);
        self.advance_high_watermark(hw)
    }

    /// Leader: a follower fetched from `fetch_offset`, so its log ends there.
    pub fn record_follower_fetch(&self, follower: BrokerId, fetch_offset: u64) -> bool {
        let log_end = self.log.log_end_offset();
        {
            let mut followers = self.followers();
            let state = followers.entry(follower).or_insert(FollowerState {
                log_end: 0,
                last_caught_up: Instant::now(),
            });
            state.log_end = fetch_offset;
            if fetch_offset >= log_end {
                state.last_caught_up = Instant::now();
            }
        }
        self.maybe_advance_high_watermark()
    }

    /// Leader: how many records each other replica is behind its log end (by its last
    /// fetch); empty on followers.
    pub fn follower_lags(&self) -> Vec<(BrokerId, u64)> {
        if !self.is_leader() {
            return Vec::new();
        }
        let log_end = self.log.log_end_offset();
        let mut lags: Vec<(BrokerId, u64)> = self
            .followers()
            .iter()
            .map(|(b, f)| (*b, log_end.saturating_sub(f.log_end)))
            .collect();
        lags.sort_unstable();
        lags
    }

    /// Leader: the ISR it should have now: followers not caught up within `lag_max`
    /// (as of `now`) leave; replicas that reached the high watermark and the leader
    /// epoch's start offset join. `None` when nothing changes
    /// or a proposal at this partition epoch is younger than `lag_max`. A proposal that
    /// added a replica which has since fallen behind is voided by proposing the current
    /// ISR again (any write bumps the partition epoch), so the high watermark stops
    /// waiting for that replica.
    pub fn isr_proposal(&self, lag_max: Duration, now: Instant) -> Option<(Role, Vec<BrokerId>)> {
        // Read in place: cloned only for a proposal (this runs for every partition led
        // twice a second or more).
        let role = self.role();
        if role.leader != Some(self.broker_id) {
            return None;
        }
        let mut pending = self.pending_isr_change();
        let earlier = pending
            .as_ref()
            .filter(|p| p.partition_epoch == role.partition_epoch);
        if earlier.is_some_and(|p| now.saturating_duration_since(p.proposed_at) < lag_max) {
            return None;
        }
        // A replica joins once it holds the high watermark and everything this leader
        // had when its epoch began (its starting HW may lag the previous leader's).
        let join_at = self
            .high_watermark()
            .max(self.leader_epoch_start_offset.load(Ordering::SeqCst));
        let recent = |at: Instant| now.saturating_duration_since(at) <= lag_max;
        let followers = self.followers();
        let stays = |b: &BrokerId| {
            *b == self.broker_id || followers.get(b).is_some_and(|f| recent(f.last_caught_up))
        };
        let joins = |b: &BrokerId| {
            !role.isr.contains(b)
                && followers
                    .get(b)
                    .is_some_and(|f| f.log_end >= join_at && recent(f.last_caught_up))
        };
        // The common answer (nothing to change) allocates nothing.
        let earlier_additions = earlier.map_or(&[][..], |p| &p.additions[..]);
        if role.isr.iter().all(stays)
            && !role.replicas.iter().any(joins)
            && earlier_additions.is_empty()
        {
            return None;
        }
        let isr: Vec<BrokerId> = role
            .replicas
            .iter()
            .copied()
            .filter(|b| (role.isr.contains(b) && stays(b)) || joins(b))
            .collect();
        drop(followers);
        let earlier_in_doubt = earlier.is_some_and(|p| p.earlier_in_doubt || !p.latest_refused);
        let mut additions = earlier_additions.to_vec();
        for b in isr.iter().filter(|b| !role.isr.contains(b)) {
            if !additions.contains(b) {
                additions.push(*b);
            }
        }
        *pending = Some(PendingIsrChange {
            partition_epoch: role.partition_epoch,
            proposed_at: now,
            additions,
            latest_refused: false,
            earlier_in_doubt,
        });
        Some((role.clone(), isr))
    }

    /// The controller refused the proposal made at `partition_epoch` (it wrote none of
    /// it, e.g. the replica to add is fenced). Unless an earlier proposal at that epoch
    /// went unanswered, nothing can add a replica any more: the high watermark stops
    /// waiting for the proposed ones. The next proposal still waits out the lag period.
    pub fn isr_proposal_refused(&self, partition_epoch: u64) {
        let mut pending = self.pending_isr_change();
        if let Some(p) = pending
            .as_mut()
            .filter(|p| p.partition_epoch == partition_epoch)
        {
            p.latest_refused = true;
            if !p.earlier_in_doubt {
                p.additions.clear();
            }
        }
        drop(pending);
        if self.maybe_advance_high_watermark() {
            self.notify_changed();
        }
    }
}
