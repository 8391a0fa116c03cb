//! A group member as the state machine keeps it, and its persisted form.

use std::time::{Duration, Instant};

use crate::types::{JoinRequest, MemberAssignment, MemberDescription, Protocol, Subscription};

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    pub(super) protocols: Vec<Protocol>,
    pub(super) assignment: MemberAssignment,
    pub(super) last_heard: Instant,
    /// A JoinGroup of this member waits for the rebalance to complete.
    pub(super) awaiting_join: bool,
    /// A SyncGroup of this member waits for the leader's assignment.
    pub(super) awaiting_sync: bool,
    /// Join order: the first joiner leads.
    pub(super) joined_seq: u64,
}

impl Member {
    /// A member joining for the first time (`joined_seq`: join order; the first leads).
    pub(super) fn new(id: String, req: JoinRequest, now: Instant, joined_seq: u64) -> Self {
        Self {
            id,
            instance_id: req.group_instance_id,
            client_id: req.client_id,
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocols: req.protocols,
            assignment: MemberAssignment::default(),
            last_heard: now,
            awaiting_join: false,
            awaiting_sync: false,
            joined_seq,
        }
    }

    /// A persisted member on a new coordinator: heard from `now` (deadlines restart).
    pub(super) fn restore(d: &MemberDescription, now: Instant, joined_seq: u64) -> Self {
        Self {
            id: d.member_id.clone(),
            instance_id: d.group_instance_id.clone(),
            client_id: d.client_id.clone(),
            session_timeout: Duration::from_millis(d.session_timeout_ms),
            rebalance_timeout: Duration::from_millis(d.rebalance_timeout_ms),
            protocols: d.protocols.clone(),
            assignment: MemberAssignment {
                partitions: d.assignment.clone(),
                bytes: d.assignment_bytes.clone(),
            },
            last_heard: now,
            awaiting_join: false,
            awaiting_sync: false,
            joined_seq,
        }
    }

    pub(super) fn describe(&self) -> MemberDescription {
        MemberDescription {
            member_id: self.id.clone(),
            group_instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            session_timeout_ms: duration_ms(self.session_timeout),
            rebalance_timeout_ms: duration_ms(self.rebalance_timeout),
            protocols: self.protocols.clone(),
            assignment: self.assignment.partitions.clone(),
            assignment_bytes: self.assignment.bytes.clone(),
        }
    }

    pub(super) fn subscription(&self, protocol: &str) -> Subscription {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.subscription.clone())
            .unwrap_or_default()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
