//! Partition reassignment (KIP-455), as decisions over the metadata. A reassignment to a
//! target replica list first widens the replicas to target + original (the new ones are
//! `adding`: they fetch as followers and join the ISR once caught up; the ones to drop
//! are `removing`); once every target replica is in the ISR it completes in one change:
//! the replicas become the target, the ISR and eligible replicas shrink to it, and
//! leadership moves to the preferred target replica (or at least off a removed one).
//! Cancelling goes back to the original replicas (listed as the reassignment had them,
//! as in Kafka) and leaves leadership where it is, if it can stay. Each change is a compare-and-set on
//! the partition epoch, so a stale one is dropped, never applied.

use rill_common::{BrokerId, ErrorCode};

use crate::controller::{config, liveness};
use crate::model::{without, MetadataState, PartitionChange, PartitionState, ReplicaSet, Topic};
use crate::MetadataError;

/// One partition's requested reassignment: a target replica list, or `None` to cancel
/// the one in progress (Kafka's AlterPartitionReassignments).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReassignmentRequest {
    pub topic: String,
    pub partition: u32,
    pub target: Option<Vec<BrokerId>>,
}

/// The changes to write and, per request in order, whether it was accepted.
#[derive(Debug, Default)]
pub struct ReassignmentPlan {
    pub changes: Vec<PartitionChange>,
    pub results: Vec<Result<(), (ErrorCode, String)>>,
}

/// Checks each request on its own and plans the accepted ones. A reassignment whose
/// target replicas are already in the ISR (a shrink or a reorder) completes at once.
pub fn plan_reassignments(
    state: &MetadataState,
    requests: &[ReassignmentRequest],
) -> ReassignmentPlan {
    let mut plan = ReassignmentPlan::default();
    let mut seen = std::collections::BTreeSet::new();
    for request in requests {
        let result = if seen.insert((request.topic.as_str(), request.partition)) {
            plan_one(state, request)
        } else {
            Err(invalid(format!(
                "{}-{} appears twice in one request",
                request.topic, request.partition
            )))
        };
        plan.results.push(match result {
            Ok(change) => {
                plan.changes.extend(change);
                Ok(())
            }
            Err(e) => Err((e.code(), e.message())),
        });
    }
    plan
}

fn plan_one(
    state: &MetadataState,
    request: &ReassignmentRequest,
) -> Result<Option<PartitionChange>, MetadataError> {
    let unknown = || {
        MetadataError::rejected(
            ErrorCode::UnknownTopicOrPartition,
            format!("{}-{} does not exist", request.topic, request.partition),
        )
    };
    let topic = state.topics.get(&request.topic).ok_or_else(unknown)?;
    let p = topic
        .partitions
        .get(request.partition as usize)
        .ok_or_else(unknown)?;
    let original = p.original_replicas();
    let target = match &request.target {
        None if !p.is_reassigning() => {
            return Err(MetadataError::rejected(
                ErrorCode::NoReassignmentInProgress,
                format!(
                    "{}-{} has no reassignment in progress",
                    request.topic, request.partition
                ),
            ))
        }
        None => original.clone(),
        Some(target) => {
            check_target(state, target)?;
            target.clone()
        }
    };
    if target == p.replicas && !p.is_reassigning() {
        return Ok(None);
    }
    let set = ReplicaSet {
        replicas: target
            .iter()
            .chain(&without(&original, &target))
            .copied()
            .collect(),
        adding: without(&target, &original),
        removing: without(&original, &target),
    };
    let change = change_to(state, topic, p, set, false).ok_or_else(|| {
        invalid(format!(
            "{}-{}: no in-sync replica would be left to lead",
            request.topic, request.partition
        ))
    })?;
    if request.target.is_none() {
        return Ok(Some(change));
    }
    // A target already in the ISR completes in the same entry.
    let applied = applied(p, &change);
    Ok(Some(
        completion(state, topic, &applied)
            .map(|done| PartitionChange {
                expected_partition_epoch: p.partition_epoch,
                ..done
            })
            .unwrap_or(change),
    ))
}

fn check_target(state: &MetadataState, target: &[BrokerId]) -> Result<(), MetadataError> {
    if target.is_empty() {
        return Err(invalid("the target replica list is empty".into()));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != target.len() {
        return Err(invalid(format!(
            "the target replicas {target:?} name a broker twice"
        )));
    }
    if let Some(b) = target.iter().find(|b| !state.brokers.contains_key(b)) {
        return Err(invalid(format!("broker {b} is not registered")));
    }
    Ok(())
}

fn invalid(message: String) -> MetadataError {
    MetadataError::rejected(ErrorCode::InvalidReplicaAssignment, message)
}

/// The completions due: partitions reassigning whose every target replica is in the ISR.
pub fn completions(state: &MetadataState) -> Vec<PartitionChange> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.is_reassigning())
        .filter_map(|(t, p)| completion(state, t, p))
        .collect()
}

/// A reassigning partition's completion, once every target replica is in the ISR and
/// one of them can lead.
fn completion(state: &MetadataState, topic: &Topic, p: &PartitionState) -> Option<PartitionChange> {
    if !p.is_reassigning() {
        return None;
    }
    let target = p.target_replicas();
    if !target.iter().all(|b| p.isr.contains(b)) {
        return None;
    }
    let set = ReplicaSet {
        replicas: target,
        adding: Vec::new(),
        removing: Vec::new(),
    };
    change_to(state, topic, p, set, true)
}

/// The change that gives `p` the replica set `set`: the ISR and eligible replicas keep
/// only its replicas; the leader is the first replica if `to_preferred` and it is alive
/// and in the ISR (a finished move hands leadership to the preferred replica), else the
/// current one if it stays in the ISR, else the first alive ISR member in replica order.
/// `None` if no replica of the set could lead while the partition has a leader now.
fn change_to(
    state: &MetadataState,
    topic: &Topic,
    p: &PartitionState,
    set: ReplicaSet,
    to_preferred: bool,
) -> Option<PartitionChange> {
    let alive = |b: &BrokerId| state.brokers.get(b).is_some_and(|x| x.is_alive());
    let isr = without(&p.isr, &without(&p.isr, &set.replicas));
    let in_isr_alive = |b: &&BrokerId| isr.contains(b) && alive(b);
    let preferred = set.replicas.first().filter(in_isr_alive).copied();
    let current = p.leader.filter(|l| isr.contains(l) && alive(l));
    let leader = if to_preferred {
        preferred.or(current)
    } else {
        current
    }
    .or_else(|| set.replicas.iter().find(in_isr_alive).copied());
    if leader.is_none() && p.leader.is_some() {
        return None;
    }
    let min_isr = config::min_insync_replicas(&topic.configs, set.replicas.len());
    let shrunk = PartitionState {
        replicas: set.replicas.clone(),
        elr: without(&p.elr, &without(&p.elr, &set.replicas)),
        ..p.clone()
    };
    let elr = liveness::next_elr(&shrunk, &isr, min_isr, &[]);
    Some(PartitionChange {
        topic: topic.name.clone(),
        partition: p.partition,
        expected_partition_epoch: p.partition_epoch,
        leader,
        leader_epoch: if leader != p.leader {
            p.leader_epoch + 1
        } else {
            p.leader_epoch
        },
        isr,
        elr,
        unclean: false,
        replicas: Some(set),
    })
}

/// `p` as it is once `change` applied (to plan a completion in the same entry).
fn applied(p: &PartitionState, change: &PartitionChange) -> PartitionState {
    let mut next = PartitionState {
        leader: change.leader,
        leader_epoch: change.leader_epoch,
        isr: change.isr.clone(),
        elr: change.elr.clone(),
        partition_epoch: p.partition_epoch,
        ..p.clone()
    };
    if let Some(set) = &change.replicas {
        next.replicas = set.replicas.clone();
        next.adding_replicas = set.adding.clone();
        next.removing_replicas = set.removing.clone();
    }
    next
}

/// The reassignments in progress, for ListPartitionReassignments and `--status`.
pub fn in_progress(state: &MetadataState) -> Vec<(&str, &PartitionState)> {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
        .filter(|(_, p)| p.is_reassigning())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetadataCommand;

    fn state(brokers: &[BrokerId], replicas: &[BrokerId], isr: &[BrokerId]) -> MetadataState {
        let mut s = MetadataState::with_brokers(brokers);
        let topic = Topic {
            name: "t".into(),
            topic_id: "id".into(),
            configs: Default::default(),
            partitions: vec![PartitionState {
                partition: 0,
                replicas: replicas.to_vec(),
                leader: Some(replicas[0]),
                leader_epoch: 3,
                isr: isr.to_vec(),
                partition_epoch: 5,
                elr: Vec::new(),
                unclean_leader_epoch: None,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
        };
        s.topics.insert("t".into(), topic);
        s
    }

    fn reassign(s: &mut MetadataState, target: Option<&[BrokerId]>) -> Result<(), ErrorCode> {
        let request = ReassignmentRequest {
            topic: "t".into(),
            partition: 0,
            target: target.map(<[BrokerId]>::to_vec),
        };
        let mut plan = plan_reassignments(s, &[request]);
        plan.results.remove(0).map_err(|(code, _)| code)?;
        let changes = plan.changes;
        s.apply(MetadataCommand::ReassignPartitions { changes }, 100)
            .map(|_| ())
            .map_err(|e| e.code())
    }

    fn partition(s: &MetadataState) -> &PartitionState {
        &s.topics["t"].partitions[0]
    }

    fn join_isr(s: &mut MetadataState, broker: BrokerId) {
        let p = partition(s).clone();
        let mut isr = p.isr.clone();
        isr.push(broker);
        let change = PartitionChange {
            topic: "t".into(),
            partition: 0,
            expected_partition_epoch: p.partition_epoch,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            isr,
            elr: Vec::new(),
            unclean: false,
            replicas: None,
        };
        assert!(s
            .apply(
                MetadataCommand::AlterPartitions {
                    changes: vec![change]
                },
                101
            )
            .is_ok());
    }

    #[test]
    fn a_move_adds_the_new_replica_first_and_completes_when_it_is_in_sync() {
        let mut s = state(&[1, 2, 3, 4], &[1, 2, 3], &[1, 2, 3]);
        assert!(reassign(&mut s, Some(&[4, 2, 3])).is_ok());
        let p = partition(&s);
        assert_eq!(p.replicas, vec![4, 2, 3, 1]);
        assert_eq!(
            (p.adding_replicas.clone(), p.removing_replicas.clone()),
            (vec![4], vec![1])
        );
        assert_eq!(
            p.leader,
            Some(1),
            "the old leader leads until the new replica caught up"
        );
        assert!(completions(&s).is_empty(), "broker 4 is not in the ISR yet");

        join_isr(&mut s, 4);
        let done = completions(&s);
        assert_eq!(done.len(), 1);
        assert!(s
            .apply(MetadataCommand::ReassignPartitions { changes: done }, 102)
            .is_ok());
        let p = partition(&s);
        assert_eq!(p.replicas, vec![4, 2, 3]);
        assert_eq!(p.isr, vec![2, 3, 4]);
        assert!(!p.is_reassigning());
        assert_eq!(
            (p.leader, p.leader_epoch),
            (Some(4), 4),
            "leadership moved off broker 1"
        );
    }

    #[test]
    fn a_shrink_or_reorder_completes_at_once() {
        let mut s = state(&[1, 2, 3], &[1, 2, 3], &[1, 2, 3]);
        assert!(reassign(&mut s, Some(&[3, 2])).is_ok());
        let p = partition(&s);
        assert_eq!(p.replicas, vec![3, 2]);
        assert_eq!(p.isr, vec![2, 3]);
        assert_eq!(p.leader, Some(3));
        assert!(!p.is_reassigning());
    }

    #[test]
    fn cancelling_goes_back_to_the_original_replicas() {
        let mut s = state(&[1, 2, 3, 4, 5], &[1, 2, 3], &[1, 2, 3]);
        assert!(reassign(&mut s, Some(&[4, 5, 3])).is_ok());
        join_isr(&mut s, 4);
        assert!(reassign(&mut s, None).is_ok());
        let p = partition(&s);
        // As in Kafka, the original replicas come back in the order the reassignment
        // listed them (target first); leadership stays where it was.
        assert_eq!(p.replicas, vec![3, 1, 2]);
        assert_eq!(p.isr, vec![1, 2, 3], "the added replica left the ISR");
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 3));
        assert!(!p.is_reassigning());
        let again = reassign(&mut s, None).err();
        assert_eq!(again, Some(ErrorCode::NoReassignmentInProgress));
    }

    #[test]
    fn a_new_target_replaces_the_one_in_progress_from_the_same_original() {
        let mut s = state(&[1, 2, 3, 4, 5], &[1, 2, 3], &[1, 2, 3]);
        assert!(reassign(&mut s, Some(&[4, 2, 3])).is_ok());
        assert!(reassign(&mut s, Some(&[5, 2, 3])).is_ok());
        let p = partition(&s);
        assert_eq!(p.replicas, vec![5, 2, 3, 1]);
        assert_eq!(
            (p.adding_replicas.clone(), p.removing_replicas.clone()),
            (vec![5], vec![1])
        );
    }

    #[test]
    fn bad_targets_are_refused_and_change_nothing() {
        let mut s = state(&[1, 2, 3], &[1, 2, 3], &[1, 2, 3]);
        for target in [&[][..], &[1, 1, 2][..], &[1, 2, 9][..]] {
            let code = reassign(&mut s, Some(target)).err();
            assert_eq!(
                code,
                Some(ErrorCode::InvalidReplicaAssignment),
                "{target:?}"
            );
        }
        let request = ReassignmentRequest {
            topic: "nope".into(),
            partition: 0,
            target: Some(vec![1]),
        };
        let plan = plan_reassignments(&s, &[request]);
        let code = plan.results[0].as_ref().err().map(|(code, _)| *code);
        assert_eq!(code, Some(ErrorCode::UnknownTopicOrPartition));
        assert_eq!(partition(&s).replicas, vec![1, 2, 3]);
    }

    #[test]
    fn a_dead_target_leader_does_not_block_completion_by_another() {
        let mut s = state(&[1, 2, 3, 4], &[1, 2, 3], &[1, 2, 3]);
        assert!(reassign(&mut s, Some(&[4, 2, 3])).is_ok());
        join_isr(&mut s, 4);
        if let Some(b) = s.brokers.get_mut(&4) {
            b.fenced = true;
        }
        let done = completions(&s);
        assert_eq!(done.len(), 1);
        assert_eq!(
            done[0].leader,
            Some(2),
            "the first alive target replica in the ISR"
        );
    }
}
