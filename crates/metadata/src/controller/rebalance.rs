//! Plans that move replicas between brokers, as reassignment targets: `decommission`
//! (every replica off one broker) and `rebalance` (replicas and preferred leaders even
//! over the placeable brokers, moving as little as possible). They only propose; the
//! reassignment machinery carries them out.

use std::collections::BTreeMap;

use rill_common::{BrokerId, ErrorCode};

use crate::controller::reassignment::ReassignmentRequest;
use crate::model::MetadataState;
use crate::MetadataError;

/// Target replica lists, by (topic, partition), starting from every partition's target.
type Assignment = BTreeMap<(String, u32), Vec<BrokerId>>;

fn current_assignment(state: &MetadataState) -> Assignment {
    state
        .topics
        .values()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| ((t.name.clone(), p.partition), p.target_replicas()))
        })
        .collect()
}

fn replica_counts(assignment: &Assignment, brokers: &[BrokerId]) -> BTreeMap<BrokerId, usize> {
    let mut counts: BTreeMap<BrokerId, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in assignment.values() {
        for b in replicas {
            if let Some(c) = counts.get_mut(b) {
                *c += 1;
            }
        }
    }
    counts
}

fn leader_counts(assignment: &Assignment, brokers: &[BrokerId]) -> BTreeMap<BrokerId, usize> {
    let mut counts: BTreeMap<BrokerId, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in assignment.values() {
        if let Some(c) = replicas.first().and_then(|b| counts.get_mut(b)) {
            *c += 1;
        }
    }
    counts
}

/// While a broker counts two more than the least counted one, `shift(from, to)` moves
/// one unit between such a pair (fullest first) if it can; the counts follow. Each move
/// narrows the spread, so it ends.
fn even_out(
    counts: &mut BTreeMap<BrokerId, usize>,
    mut shift: impl FnMut(BrokerId, BrokerId) -> bool,
) {
    loop {
        let Some((&empty, &least)) = counts.iter().min_by_key(|(b, c)| (**c, **b)) else {
            return;
        };
        let mut fuller: Vec<(BrokerId, usize)> = counts
            .iter()
            .filter(|(_, c)| **c > least + 1)
            .map(|(b, c)| (*b, *c))
            .collect();
        fuller.sort_by_key(|(b, c)| (std::cmp::Reverse(*c), *b));
        let Some(full) = fuller
            .into_iter()
            .map(|(b, _)| b)
            .find(|full| shift(*full, empty))
        else {
            return;
        };
        if let Some(c) = counts.get_mut(&full) {
            *c -= 1;
        }
        if let Some(c) = counts.get_mut(&empty) {
            *c += 1;
        }
    }
}

/// The requests that differ from the current targets.
fn diff(state: &MetadataState, planned: Assignment) -> Vec<ReassignmentRequest> {
    let current = current_assignment(state);
    planned
        .into_iter()
        .filter(|(tp, replicas)| current.get(tp) != Some(replicas))
        .map(|((topic, partition), replicas)| ReassignmentRequest {
            topic,
            partition,
            target: Some(replicas),
        })
        .collect()
}

/// Moves every replica off `broker`: each goes, in its place in the replica list, to the
/// placeable broker not yet holding the partition with the fewest replicas.
pub fn plan_decommission(
    state: &MetadataState,
    broker: BrokerId,
) -> Result<Vec<ReassignmentRequest>, MetadataError> {
    if !state.brokers.contains_key(&broker) {
        return Err(MetadataError::rejected(
            ErrorCode::BrokerNotAvailable,
            format!("broker {broker} is not registered"),
        ));
    }
    let targets: Vec<BrokerId> = state
        .placeable_brokers()
        .into_iter()
        .filter(|b| *b != broker)
        .collect();
    let mut assignment = current_assignment(state);
    let mut counts = replica_counts(&assignment, &targets);
    for ((topic, partition), replicas) in assignment.iter_mut() {
        let Some(at) = replicas.iter().position(|b| *b == broker) else {
            continue;
        };
        let to = counts
            .iter()
            .filter(|(b, _)| !replicas.contains(b))
            .min_by_key(|(b, c)| (**c, **b))
            .map(|(b, _)| *b)
            .ok_or_else(|| {
                MetadataError::rejected(
                    ErrorCode::InvalidReplicationFactor,
                    format!(
                        "{topic}-{partition} has {} replicas and only {} other alive brokers \
                         can hold them",
                        replicas.len(),
                        targets.len()
                    ),
                )
            })?;
        replicas[at] = to;
        if let Some(c) = counts.get_mut(&to) {
            *c += 1;
        }
    }
    Ok(diff(state, assignment))
}

/// Evens replicas, then preferred leaders, over the placeable brokers: replicas on other
/// brokers (dead or draining) move first; then, while one broker holds two more
/// replicas than another, one replica moves from the fullest to the emptiest that does
/// not hold its partition; leaders even out by reordering replica lists (no data moves).
pub fn plan_rebalance(state: &MetadataState) -> Result<Vec<ReassignmentRequest>, MetadataError> {
    let brokers = state.placeable_brokers();
    if brokers.is_empty() {
        return Err(MetadataError::rejected(
            ErrorCode::BrokerNotAvailable,
            "no alive broker to rebalance over",
        ));
    }
    let mut assignment = current_assignment(state);
    let mut counts = replica_counts(&assignment, &brokers);
    // Replicas on brokers that cannot keep them.
    for replicas in assignment.values_mut() {
        for at in 0..replicas.len() {
            if counts.contains_key(&replicas[at]) {
                continue;
            }
            let to = counts
                .iter()
                .filter(|(b, _)| !replicas.contains(b))
                .min_by_key(|(b, c)| (**c, **b))
                .map(|(b, _)| *b);
            if let Some(to) = to {
                replicas[at] = to;
                if let Some(c) = counts.get_mut(&to) {
                    *c += 1;
                }
            }
        }
    }
    // Replica counts: from a broker with two more than the emptiest, one at a time.
    even_out(&mut counts, |full, empty| {
        let movable = assignment
            .values_mut()
            .find(|r| r.contains(&full) && !r.contains(&empty));
        let Some(replicas) = movable else {
            return false;
        };
        if let Some(at) = replicas.iter().position(|b| *b == full) {
            replicas[at] = empty;
        }
        true
    });
    // Preferred leaders: swap the first replica with a less-leading one in the list.
    let mut leaders = leader_counts(&assignment, &brokers);
    even_out(&mut leaders, |full, empty| {
        let swappable = assignment
            .values_mut()
            .find(|r| r.first() == Some(&full) && r.contains(&empty));
        let Some(replicas) = swappable else {
            return false;
        };
        if let Some(at) = replicas.iter().position(|b| *b == empty) {
            replicas.swap(0, at);
        }
        true
    });
    Ok(diff(state, assignment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionState, Topic};

    fn state(brokers: &[BrokerId], replicas: &[&[BrokerId]]) -> MetadataState {
        let mut s = MetadataState::with_brokers(brokers);
        let partitions = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| PartitionState {
                partition: i as u32,
                replicas: r.to_vec(),
                leader: r.first().copied(),
                leader_epoch: 0,
                isr: r.to_vec(),
                partition_epoch: 0,
                elr: Vec::new(),
                unclean_leader_epoch: None,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
            .collect();
        let topic = Topic {
            name: "t".into(),
            topic_id: "id".into(),
            configs: Default::default(),
            partitions,
        };
        s.topics.insert("t".into(), topic);
        s
    }

    fn targets(requests: &[ReassignmentRequest]) -> Vec<(u32, Vec<BrokerId>)> {
        requests
            .iter()
            .map(|r| (r.partition, r.target.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn decommission_moves_every_replica_off_the_broker_evenly() {
        let s = state(
            &[1, 2, 3, 4, 5],
            &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 3, 2]],
        );
        let plan = plan_decommission(&s, 1).unwrap_or_default();
        let planned = targets(&plan);
        assert_eq!(planned.len(), 4);
        for (_, replicas) in &planned {
            assert!(!replicas.contains(&1));
            assert_eq!(replicas.len(), 3);
        }
        let on = |b| planned.iter().filter(|(_, r)| r.contains(&b)).count();
        assert_eq!((on(4), on(5)), (2, 2), "the new brokers share the load");
    }

    #[test]
    fn decommission_needs_enough_brokers_left() {
        let s = state(&[1, 2, 3], &[&[1, 2, 3]]);
        let code = plan_decommission(&s, 1).err().map(|e| e.code());
        assert_eq!(code, Some(ErrorCode::InvalidReplicationFactor));
    }

    #[test]
    fn rebalance_spreads_replicas_and_leaders_onto_new_brokers_with_few_moves() {
        let rows: Vec<Vec<BrokerId>> = (0..6)
            .map(|i| (0..3).map(|k| (i + k) % 3 + 1).collect())
            .collect();
        let rows: Vec<&[BrokerId]> = rows.iter().map(Vec::as_slice).collect();
        let s = state(&[1, 2, 3, 4, 5], &rows);
        let plan = plan_rebalance(&s).unwrap_or_default();
        let mut after = current_assignment(&s);
        for r in &plan {
            after.insert(
                (r.topic.clone(), r.partition),
                r.target.clone().unwrap_or_default(),
            );
        }
        let brokers = [1, 2, 3, 4, 5];
        let replicas = replica_counts(&after, &brokers);
        let leaders = leader_counts(&after, &brokers);
        let spread = |c: &BTreeMap<BrokerId, usize>| {
            c.values().max().unwrap_or(&0) - c.values().min().unwrap_or(&0)
        };
        assert!(spread(&replicas) <= 1, "{replicas:?}");
        assert!(spread(&leaders) <= 1, "{leaders:?}");
        let moved: usize = plan
            .iter()
            .map(|r| {
                let before = s
                    .partition("t", r.partition)
                    .map(|p| p.replicas.clone())
                    .unwrap_or_default();
                r.target
                    .iter()
                    .flatten()
                    .filter(|b| !before.contains(b))
                    .count()
            })
            .sum();
        assert_eq!(moved, 6, "18 replicas over 5 brokers: 3 or 4 each, 6 moves");
        assert!(plan_rebalance(&state(&[1, 2, 3], &rows))
            .unwrap_or_default()
            .is_empty());
    }
}
