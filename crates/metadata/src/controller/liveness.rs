//! Broker liveness: which brokers' sessions expired, and what fencing or unfencing a
//! broker does to the partitions it replicates (ISR shrink, leader election from the ISR,
//! an offline partition coming back when an ISR member returns).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rill_common::{BrokerId, ErrorCode};

use crate::controller::config;
use crate::model::{MetadataState, PartitionChange, PartitionState, StoreInfo, Topic};
use crate::MetadataError;

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
/// get a new leader (see [`settle`]). The last ISR member is never removed: with unclean
/// election off, a partition whose ISR is all dead stays offline (leader `None`) until
/// that member or an eligible leader replica returns.
pub fn changes_on_fence(state: &MetadataState, broker: BrokerId) -> Vec<PartitionChange> {
    let alive = |b: &BrokerId| *b != broker && is_alive(state, b);
    partitions_with_topic(state)
        .filter(|(_, p)| p.isr.contains(&broker))
        .filter_map(|(topic, p)| {
            let isr: Vec<BrokerId> = if p.isr.len() > 1 {
                p.isr.iter().copied().filter(|b| *b != broker).collect()
            } else {
                p.isr.clone()
            };
            settle(topic, p, isr, alive, &[])
        })
        .collect()
}

/// Partition changes when `broker` is unfenced: offline partitions whose ISR or eligible
/// leader replicas hold it get it as leader again (leader epoch + 1).
pub fn changes_on_unfence(state: &MetadataState, broker: BrokerId) -> Vec<PartitionChange> {
    let alive = |b: &BrokerId| *b == broker || is_alive(state, b);
    partitions_with_topic(state)
        .filter(|(_, p)| p.leader.is_none() && p.replicas.contains(&broker))
        .filter_map(|(topic, p)| settle(topic, p, p.isr.clone(), alive, &[]))
        .collect()
}

/// Partition changes when `broker` registers: a new incarnation fences the old one (it
/// may have lost writes it never made durable, so it leaves every ISR and stops leading,
/// leader epochs bump), then the new one is unfenced. It rejoins ISRs by catching up. A
/// broker whose store is new or lost acknowledged writes (`store` against its last
/// registration) also leaves the ISRs it was the last member of and every set of
/// eligible leader replicas: it can lead none of its partitions until it caught up.
pub fn changes_on_register(
    state: &MetadataState,
    broker: BrokerId,
    store: &StoreInfo,
) -> Vec<PartitionChange> {
    let Some(previous) = state.brokers.get(&broker) else {
        return Vec::new();
    };
    let mut changes = if store.lost_data_since(Some(previous)) {
        let alive = |b: &BrokerId| *b != broker && is_alive(state, b);
        partitions_with_topic(state)
            .filter(|(_, p)| p.isr.contains(&broker) || p.elr.contains(&broker))
            .filter_map(|(topic, p)| {
                let isr = p.isr.iter().copied().filter(|b| *b != broker).collect();
                settle(topic, p, isr, alive, &[broker])
            })
            .collect()
    } else {
        changes_on_fence(state, broker)
    };
    let mut after_fence = state.clone();
    for change in &changes {
        after_fence.apply_partition_change(change.clone());
    }
    if let Some(b) = after_fence.brokers.get_mut(&broker) {
        b.fenced = true;
    }
    changes.extend(changes_on_unfence(&after_fence, broker));
    changes
}

/// An operator's unclean election of one offline partition: `candidate` (if it is an
/// alive replica; else the first alive replica) leads though it may lack committed
/// records; the ISR restarts with it alone.
pub fn plan_unclean_election(
    state: &MetadataState,
    topic: &str,
    partition: u32,
    candidate: Option<BrokerId>,
) -> Result<PartitionChange, MetadataError> {
    let p = state.partition(topic, partition).ok_or_else(|| {
        MetadataError::rejected(
            ErrorCode::UnknownTopicOrPartition,
            format!("{topic}-{partition}"),
        )
    })?;
    if let Some(leader) = p.leader {
        return Err(MetadataError::rejected(
            ErrorCode::ElectionNotNeeded,
            format!("{topic}-{partition} has a leader ({leader}); an unclean election is only for offline partitions"),
        ));
    }
    let alive_replica = |b: &BrokerId| p.replicas.contains(b) && is_alive(state, b);
    let leader = candidate
        .filter(alive_replica)
        .or_else(|| first_in_replica_order(p, &p.replicas, alive_replica))
        .ok_or_else(|| {
            MetadataError::rejected(
                ErrorCode::EligibleLeadersNotAvailable,
                format!("no replica of {topic}-{partition} is alive"),
            )
        })?;
    Ok(unclean_change(topic, p, leader))
}

fn unclean_change(topic: &str, p: &PartitionState, leader: BrokerId) -> PartitionChange {
    PartitionChange {
        topic: topic.to_string(),
        partition: p.partition,
        expected_partition_epoch: p.partition_epoch,
        leader: Some(leader),
        leader_epoch: p.leader_epoch + 1,
        isr: vec![leader],
        elr: Vec::new(),
        unclean: true,
        replicas: None,
    }
}

/// Why a partition has no leader, or `None` if it has one.
pub fn offline_reason(state: &MetadataState, p: &PartitionState) -> Option<String> {
    if p.leader.is_some() {
        return None;
    }
    if p.isr.is_empty() && p.elr.is_empty() {
        return Some(
            "no replica is known to hold every committed record (the last in-sync replica came \
             back with a new or emptied store); it stays offline until an operator runs \
             `rill cluster elect-leaders --unclean`, which elects a replica that may lack records"
                .to_string(),
        );
    }
    let down: Vec<BrokerId> = p
        .isr
        .iter()
        .chain(&p.elr)
        .copied()
        .filter(|b| !is_alive(state, b))
        .collect();
    Some(format!(
        "every in-sync or eligible leader replica is down ({down:?}); it stays offline until one returns"
    ))
}

fn is_alive(state: &MetadataState, broker: &BrokerId) -> bool {
    state.brokers.get(broker).is_some_and(|x| x.is_alive())
}

/// The partition once its ISR became `isr`: a leader that left it or is not alive is
/// replaced by the first alive ISR member in replica order, else (the ISR all dead) the
/// first alive eligible leader replica, which becomes the ISR; with
/// `unclean.leader.election.enable`, else any alive replica. Replicas dropped from an
/// ISR smaller than `min.insync.replicas` become eligible leader replicas, except those
/// in `lost` (their data is gone); an ISR that reaches `min.insync.replicas` clears them.
fn settle(
    topic: &Topic,
    p: &PartitionState,
    mut isr: Vec<BrokerId>,
    alive: impl Fn(&BrokerId) -> bool,
    lost: &[BrokerId],
) -> Option<PartitionChange> {
    let mut elr: Vec<BrokerId> = p
        .elr
        .iter()
        .copied()
        .filter(|b| !lost.contains(b))
        .collect();
    let keeps_leader = p.leader.is_some_and(|l| isr.contains(&l) && alive(&l));
    let leader = if keeps_leader {
        p.leader
    } else {
        first_in_replica_order(p, &isr, &alive).or_else(|| first_in_replica_order(p, &elr, &alive))
    };
    if leader.is_none() && config::unclean_leader_election(&topic.configs) {
        if let Some(leader) = first_in_replica_order(p, &p.replicas, &alive) {
            return Some(unclean_change(&topic.name, p, leader));
        }
    }
    if let Some(l) = leader.filter(|l| !isr.contains(l)) {
        isr = vec![l];
    }
    let min_isr = config::min_insync_replicas(&topic.configs, p.replicas.len());
    elr = next_elr(p, &isr, min_isr, lost);
    change_if_different(&topic.name, p, leader, isr, elr)
}

/// The eligible leader replicas once the ISR becomes `isr` (KIP-966): none while it has
/// `min_isr` members (the high watermark moves again); else the old ones plus every
/// replica leaving the ISR now, minus ISR members and replicas whose data was `lost`.
pub(crate) fn next_elr(
    p: &PartitionState,
    isr: &[BrokerId],
    min_isr: usize,
    lost: &[BrokerId],
) -> Vec<BrokerId> {
    if isr.len() >= min_isr.min(p.replicas.len()) {
        return Vec::new();
    }
    let mut elr: Vec<BrokerId> = p
        .elr
        .iter()
        .chain(&p.isr)
        .copied()
        .filter(|b| !isr.contains(b) && !lost.contains(b))
        .collect();
    elr.sort_by_key(|b| p.replicas.iter().position(|r| r == b));
    elr.dedup();
    elr
}

fn partitions_with_topic(state: &MetadataState) -> impl Iterator<Item = (&Topic, &PartitionState)> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
}

fn first_in_replica_order(
    partition: &PartitionState,
    candidates: &[BrokerId],
    alive: impl Fn(&BrokerId) -> bool,
) -> Option<BrokerId> {
    partition
        .replicas
        .iter()
        .copied()
        .find(|b| candidates.contains(b) && alive(b))
}

pub(crate) fn change_if_different(
    topic: &str,
    p: &PartitionState,
    leader: Option<BrokerId>,
    isr: Vec<BrokerId>,
    elr: Vec<BrokerId>,
) -> Option<PartitionChange> {
    if leader == p.leader && isr == p.isr && elr == p.elr {
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
        elr,
        unclean: false,
        replicas: None,
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
                    elr: Vec::new(),
                    unclean_leader_epoch: None,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
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
        let store = s.brokers[&1].store.clone();
        let changes = changes_on_register(&s, 1, &store);
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: 1,
            addr: "b1:1".into(),
            listeners: Default::default(),
            store,
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
        let store = s.brokers[&1].store.clone();
        let changes = changes_on_register(&s, 1, &store);
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: 1,
            addr: "b1:1".into(),
            listeners: Default::default(),
            store,
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

    fn with_min_isr(mut s: MetadataState, min_isr: &str) -> MetadataState {
        if let Some(t) = s.topics.get_mut("t") {
            t.configs
                .insert("min.insync.replicas".into(), min_isr.into());
        }
        s
    }

    fn register(s: &mut MetadataState, broker: BrokerId, store: StoreInfo, index: u64) {
        let changes = changes_on_register(s, broker, &store);
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: broker,
            addr: format!("b{broker}:1"),
            listeners: Default::default(),
            store,
            changes,
        };
        assert!(s.apply(cmd, index).is_ok());
    }

    fn wiped(broker: BrokerId) -> StoreInfo {
        StoreInfo {
            store_id: format!("new-store-{broker}"),
            clean_shutdown: false,
            acks_before_fsync: false,
        }
    }

    fn partition(s: &MetadataState) -> PartitionState {
        s.topics["t"].partitions[0].clone()
    }

    #[test]
    fn replicas_leaving_an_isr_below_min_isr_stay_eligible_and_a_full_isr_clears_them() {
        let mut s = with_min_isr(state(&[1, 2, 3]), "2");
        fence(&mut s, 3);
        // ISR [1, 2] still has min.insync.replicas: the high watermark moves without 3.
        assert_eq!((partition(&s).isr, partition(&s).elr), (vec![1, 2], vec![]));
        fence(&mut s, 2);
        assert_eq!((partition(&s).isr, partition(&s).elr), (vec![1], vec![2]));
        // 2 comes back (still eligible) and rejoins by catching up: the ISR reaches
        // min.insync.replicas again.
        unfence(&mut s, 2);
        assert_eq!(partition(&s).elr, vec![2]);
        let change = crate::controller::isr::plan_alter_partition(
            &s,
            &crate::controller::isr::AlterPartition {
                broker_id: 1,
                broker_epoch: 10,
                topic: "t".into(),
                partition: 0,
                leader_epoch: partition(&s).leader_epoch,
                partition_epoch: partition(&s).partition_epoch,
                isr: vec![1, 2],
            },
        );
        let change = change.unwrap_or_else(|e| panic!("{e}"));
        assert!(s.apply_partition_change(change));
        assert_eq!((partition(&s).isr, partition(&s).elr), (vec![1, 2], vec![]));
    }

    #[test]
    fn an_eligible_replica_leads_when_the_last_isr_member_is_dead() {
        let mut s = with_min_isr(state(&[1, 2, 3]), "2");
        fence(&mut s, 3);
        fence(&mut s, 2);
        fence(&mut s, 1);
        let p = partition(&s);
        assert_eq!(
            (p.leader, p.isr.clone(), p.elr.clone()),
            (None, vec![1], vec![2])
        );
        assert!(offline_reason(&s, &p).is_some_and(|r| r.contains("until one returns")));
        // 3 is neither in sync nor eligible: no unclean election.
        unfence(&mut s, 3);
        assert_eq!(partition(&s).leader, None);
        unfence(&mut s, 2);
        let p = partition(&s);
        // 2 holds every committed record; the dead 1 does too and becomes eligible.
        assert_eq!(
            (p.leader, p.isr.clone(), p.elr.clone()),
            (Some(2), vec![2], vec![1])
        );
        assert_eq!(offline_reason(&s, &p), None);
    }

    #[test]
    fn the_last_isr_member_back_with_an_empty_store_leads_nothing_and_the_partition_stays_offline()
    {
        // RF 2, min ISR 1: the ISR shrank to the leader, which acknowledged alone.
        let mut s = state(&[4, 5]);
        s.brokers = MetadataState::with_brokers(&[4, 5]).brokers;
        fence(&mut s, 5);
        fence(&mut s, 4);
        assert_eq!((partition(&s).leader, partition(&s).isr), (None, vec![4]));
        register(&mut s, 4, wiped(4), 300);
        let p = partition(&s);
        assert_eq!(
            (p.leader, p.isr.clone(), p.elr.clone()),
            (None, vec![], vec![])
        );
        assert!(offline_reason(&s, &p).is_some_and(|r| r.contains("--unclean")));
        // 5, intact but behind, comes back: it is not eligible either.
        let store = s.brokers[&5].store.clone();
        register(&mut s, 5, store, 301);
        assert_eq!(partition(&s).leader, None);
        // The operator chooses an unclean election.
        let change = plan_unclean_election(&s, "t", 0, Some(5)).unwrap_or_else(|e| panic!("{e}"));
        assert!(s
            .apply(
                MetadataCommand::ElectLeaders {
                    changes: vec![change]
                },
                302
            )
            .is_ok());
        let p = partition(&s);
        assert_eq!((p.leader, p.isr.clone()), (Some(5), vec![5]));
        assert_eq!(p.unclean_leader_epoch, Some(p.leader_epoch));
        assert!(plan_unclean_election(&s, "t", 0, Some(5)).is_err());
    }

    #[test]
    fn an_emptied_replica_leaves_the_eligible_set_and_others_still_lead() {
        let mut s = with_min_isr(state(&[1, 2, 3]), "2");
        fence(&mut s, 3);
        fence(&mut s, 2);
        fence(&mut s, 1);
        register(&mut s, 2, wiped(2), 300);
        let p = partition(&s);
        assert_eq!(
            (p.leader, p.isr.clone(), p.elr.clone()),
            (None, vec![1], vec![])
        );
        let store = s.brokers[&1].store.clone();
        register(&mut s, 1, store, 301);
        assert_eq!(partition(&s).leader, Some(1));
    }

    #[test]
    fn an_unclean_shutdown_loses_data_only_when_writes_are_acknowledged_before_fsync() {
        let s = state(&[1]);
        let previous = &s.brokers[&1];
        let mut store = previous.store.clone();
        store.clean_shutdown = false;
        assert!(!store.lost_data_since(Some(previous)));
        store.acks_before_fsync = true;
        assert!(store.lost_data_since(Some(previous)));
        store.clean_shutdown = true;
        assert!(!store.lost_data_since(Some(previous)));
        assert!(!wiped(1).lost_data_since(None));
        assert!(wiped(1).lost_data_since(Some(previous)));
    }

    #[test]
    fn unclean_election_enabled_on_the_topic_elects_any_alive_replica() {
        let mut s = state(&[1, 2]);
        if let Some(t) = s.topics.get_mut("t") {
            t.configs
                .insert("unclean.leader.election.enable".into(), "true".into());
        }
        fence(&mut s, 2);
        fence(&mut s, 1);
        unfence(&mut s, 2);
        let p = partition(&s);
        assert_eq!((p.leader, p.isr.clone()), (Some(2), vec![2]));
        assert_eq!(p.unclean_leader_epoch, Some(p.leader_epoch));
    }
}
