//! Coordinator metrics. Consumer groups, of both protocols: rebalances (count, latency
//! from PreparingRebalance to Stable, partitions that changed owner), groups by state and
//! members per group; committed-offset lag is exported by each partition's leader.
//! Transactions: transactional ids by state, transactions committed, aborted and
//! expired; open transactions and LSO lag are exported by each partition's leader.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::group::Group;
use crate::types::GroupState;

pub(super) fn rebalanced(group_id: &str, latency: Duration, partitions_moved: usize) {
    metrics::counter!("rill_group_rebalances_total", "group" => group_id.to_string()).increment(1);
    metrics::histogram!("rill_group_rebalance_seconds").record(latency.as_secs_f64());
    metrics::counter!("rill_group_partitions_moved_total", "group" => group_id.to_string())
        .increment(partitions_moved as u64);
}

/// Gauges of the groups this coordinator holds (refreshed each tick).
pub(super) fn groups<'a>(groups: impl Iterator<Item = &'a Group>) {
    let mut by_state: BTreeMap<&'static str, u64> = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    for g in groups {
        *by_state.entry(g.state().as_str()).or_default() += 1;
        metrics::gauge!("rill_group_members", "group" => g.group_id.clone())
            .set(g.member_count() as f64);
    }
    for (state, count) in by_state {
        metrics::gauge!("rill_groups", "state" => state).set(count as f64);
    }
}

/// A transaction completed (its markers are all written).
pub(super) fn transaction_completed(commit: bool) {
    let outcome = if commit { "commit" } else { "abort" };
    metrics::counter!("rill_transactions_completed_total", "outcome" => outcome).increment(1);
}

/// The coordinator aborted a transaction that outlived its timeout.
pub(super) fn transaction_expired() {
    metrics::counter!("rill_transactions_expired_total").increment(1);
}

/// Gauges of the transactional ids this coordinator holds, by state (each tick).
pub(super) fn transactions<'a>(
    transactions: impl Iterator<Item = &'a crate::transaction::Transaction>,
) {
    use rill_common::transaction::TxnState;
    let mut by_state: BTreeMap<&'static str, u64> = TxnState::ALL
        .into_iter()
        .filter(|s| *s != TxnState::Dead)
        .map(|s| (s.as_str(), 0))
        .collect();
    for t in transactions {
        *by_state.entry(t.state().as_str()).or_default() += 1;
    }
    for (state, count) in by_state {
        metrics::gauge!("rill_transactions", "state" => state).set(count as f64);
    }
}
