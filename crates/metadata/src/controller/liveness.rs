//! Broker liveness: which brokers' sessions expired, and what fencing or unfencing a
//! broker does to the partitions it replicates (ISR shrink, leader election from the ISR,
//! an offline partition coming back when an ISR member returns).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rill_common::BrokerId;

use crate::model::{MetadataState, PartitionChange, PartitionState};

/// Alive brokers silent for longer than `silence` at `now`, with their epochs: with the
/// session timeout, those whose session expired; with a shorter silence, those worth a
/// liveness probe. A broker never heard from by this controller counts as heard from at
/// `tracking_since` (when this node became the active controller): deadlines restart on
/// controller failover.
pub fn silent_brokers(
    state: &MetadataState,
    last_heartbeat: &HashMap<BrokerId, Instant>,
    tracking_since: Instant,
    now: Instant,
    silence: Duration,
) -> Vec<(BrokerId, u64)> {
    state
        .brokers
        .values()
        .filter(|b| b.is_alive())
        .filter(|b| {
            let seen = last_heartbeat
                .get(&b.id)
                .copied()
                .unwrap_or(tracking_since)
                .max(tracking_since);
            now.saturating_duration_since(seen) > silence
        })
        .map(|b| (b.id, b.epoch))
        .collect()
}

/// Partition changes when `broker` is fenced: it leaves every ISR, and partitions it led
/// get the first alive ISR member in replica order as leader (leader epoch + 1). The last
/// ISR member is never removed: with unclean election off, a partition whose ISR is all
/// dead stays offline (leader `None`) until that member returns.
pub fn changes_on_fence(state: &MetadataState, broker: BrokerId) -> Vec<PartitionChange> {
    let alive = |b: &BrokerId| *b != broker && state.brokers.get(b).is_some_and(|x| x.is_alive());
    partitions_with_topic(state)
        .filter(|(_, p)| p.isr.contains(&broker))
        .filter_map(|(topic, p)| {
            let isr: Vec<BrokerId> = if p.isr.len() > 1 {
                p.isr.iter().copied().filter(|b| *b != broker).collect()
            } else {
                p.isr.clone()
            };
            let leader = if p.leader == Some(broker) || p.leader.is_none() {
                first_in_replica_order(p, &isr, alive)
            } else {
                p.leader
            };
            change_if_different(topic, p, leader, isr)
        })
        .collect()
}

/// Partition changes when `broker` is unfenced: offline partitions whose ISR holds it get
/// it as leader again (leader epoch + 1).
pub fn changes_on_unfence(state: &MetadataState, broker: BrokerId) -> Vec<PartitionChange> {
    partitions_with_topic(state)
        .filter(|(_, p)| p.leader.is_none() && p.isr.contains(&broker))
        .filter_map(|(topic, p)| change_if_different(topic, p, Some(broker), p.isr.clone()))
        .collect()
}

/// Partition changes when `broker` registers: a new incarnation fences the old one (it
/// may have lost writes it never made durable, so it leaves every ISR and stops leading,
/// leader epochs bump), then the new one is unfenced. It rejoins ISRs by catching up.
pub fn changes_on_register(state: &MetadataState, broker: BrokerId) -> Vec<PartitionChange> {
    if !state.brokers.contains_key(&broker) {
        return Vec::new();
    }
    let mut after_fence = state.clone();
    let mut changes = changes_on_fence(state, broker);
    for change in &changes {
        after_fence.apply_partition_change(change.clone());
    }
    if let Some(b) = after_fence.brokers.get_mut(&broker) {
        b.fenced = true;
    }
    changes.extend(changes_on_unfence(&after_fence, broker));
    changes
}

fn partitions_with_topic(state: &MetadataState) -> impl Iterator<Item = (&str, &PartitionState)> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
}

fn first_in_replica_order(
    partition: &PartitionState,
    isr: &[BrokerId],
    alive: impl Fn(&BrokerId) -> bool,
) -> Option<BrokerId> {
    partition
        .replicas
        .iter()
        .copied()
        .find(|b| isr.contains(b) && alive(b))
}

pub(crate) fn change_if_different(
    topic: &str,
    p: &PartitionState,
    leader: Option<BrokerId>,
    isr: Vec<BrokerId>,
) -> Option<PartitionChange> {
    if leader == p.leader && isr == p.isr {
        return None;
    }
    let leader_epoch = if leader != p.leader {
        p.leader_epoch + 1
    } else {
        p.leader_epoch
    };
    Some(PartitionChange {
        topic: topic.to_string(),
        partition: p.partition,
        expected_partition_epoch: p.partition_epoch,
        leader,
        leader_epoch,
        isr,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{MetadataCommand, Topic};

    fn state(replicas: &[BrokerId]) -> MetadataState {
        let mut state = MetadataState::with_brokers(&[1, 2, 3]);
        state.topics.insert(
            "t".into(),
            Topic {
                name: "t".into(),
                topic_id: "id".into(),
                configs: BTreeMap::new(),
                partitions: vec![PartitionState {
                    partition: 0,
                    replicas: replicas.to_vec(),
                    leader: replicas.first().copied(),
                    leader_epoch: 0,
                    isr: replicas.to_vec(),
                    partition_epoch: 0,
                }],
            },
        );
        state
    }

    fn fence(state: &mut MetadataState, broker: BrokerId) {
        let changes = changes_on_fence(state, broker);
        let epoch = state.brokers[&broker].epoch;
        let cmd = MetadataCommand::FenceBroker {
            broker_id: broker,
            broker_epoch: epoch,
            changes,
        };
        assert!(state.apply(cmd, 100).is_ok());
    }

    fn unfence(state: &mut MetadataState, broker: BrokerId) {
        let changes = changes_on_unfence(state, broker);
        let epoch = state.brokers[&broker].epoch;
        let cmd = MetadataCommand::UnfenceBroker {
            broker_id: broker,
            broker_epoch: epoch,
            changes,
        };
        assert!(state.apply(cmd, 101).is_ok());
    }

    #[test]
    fn session_expiry_uses_last_heartbeat_or_controller_start() {
        let s = state(&[1, 2, 3]);
        let t0 = Instant::now();
        let timeout = Duration::from_secs(3);
        let beats = HashMap::from([(1, t0 + Duration::from_secs(2)), (2, t0)]);
        // Broker 3 never heartbeated: its deadline counts from t0.
        assert!(silent_brokers(&s, &beats, t0, t0 + Duration::from_secs(3), timeout).is_empty());
        let expired = silent_brokers(&s, &beats, t0, t0 + Duration::from_millis(3500), timeout);
        assert_eq!(expired, vec![(2, 20), (3, 30)]);
    }

    #[test]
    fn fencing_the_leader_elects_the_next_isr_member_and_bumps_the_epoch() {
        let mut s = state(&[1, 2, 3]);
        fence(&mut s, 1);
        let p = &s.topics["t"].partitions[0];
        assert_eq!(p.leader, Some(2));
        assert_eq!(p.leader_epoch, 1);
        assert_eq!(p.isr, vec![2, 3]);
        assert_eq!(p.partition_epoch, 1);
    }

    #[test]
    fn fencing_a_follower_shrinks_the_isr_and_keeps_the_leader_epoch() {
        let mut s = state(&[1, 2, 3]);
        fence(&mut s, 3);
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 0));
        assert_eq!(p.isr, vec![1, 2]);
    }

    #[test]
    fn all_isr_dead_leaves_the_partition_offline_until_the_last_member_returns() {
        let mut s = state(&[1, 2, 3]);
        fence(&mut s, 1);
        fence(&mut s, 2);
        fence(&mut s, 3);
        let p = s.topics["t"].partitions[0].clone();
        assert_eq!(p.leader, None);
        assert_eq!(p.isr, vec![3]);
        // Broker 1 returns: it is not in the ISR, so no unclean election.
        unfence(&mut s, 1);
        assert_eq!(s.topics["t"].partitions[0].leader, None);
        unfence(&mut s, 3);
        let p = &s.topics["t"].partitions[0];
        assert_eq!(p.leader, Some(3));
        assert!(p.leader_epoch > 2);
    }

    #[test]
    fn a_restarted_leader_gives_up_leadership_and_rejoins_as_a_follower() {
        let mut s = state(&[1, 2, 3]);
        let changes = changes_on_register(&s, 1);
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: 1,
            addr: "b1:1".into(),
            changes,
        };
        assert!(s.apply(cmd, 200).is_ok());
        let p = &s.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (Some(2), 1, vec![2, 3])
        );
        assert_eq!(s.brokers[&1].epoch, 200);
        assert!(s.brokers[&1].is_alive());
    }

    #[test]
    fn a_restarted_sole_replica_leads_again_under_a_new_epoch() {
        let mut s = state(&[1]);
        let changes = changes_on_register(&s, 1);
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: 1,
            addr: "b1:1".into(),
            changes,
        };
        assert!(s.apply(cmd, 201).is_ok());
        let p = &s.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (Some(1), 2, vec![1])
        );
    }

    #[test]
    fn a_stale_change_is_dropped_by_apply() {
        let mut s = state(&[1, 2, 3]);
        let stale = changes_on_fence(&s, 1);
        fence(&mut s, 3);
        let before = s.topics["t"].partitions[0].clone();
        let cmd = MetadataCommand::FenceBroker {
            broker_id: 1,
            broker_epoch: 10,
            changes: stale,
        };
        assert!(s.apply(cmd, 102).is_ok());
        assert_eq!(s.topics["t"].partitions[0], before);
    }
}
