//! Replica placement: spread replicas and leaders evenly over the alive brokers (not
//! those being decommissioned).

use std::collections::BTreeMap;

use rill_common::{BrokerId, ErrorCode};

use crate::model::MetadataState;
use crate::MetadataError;

/// Replica lists for `count` new partitions with `replication_factor` replicas each.
///
/// Brokers are ordered by how many partitions they already lead (then by id) and the
/// partitions take them round-robin, each replica list rotated by one from the last: the
/// first replica (the preferred leader) of consecutive partitions walks over every broker,
/// so leaders end up even across brokers, and so do replicas.
pub fn place_replicas(
    state: &MetadataState,
    count: u32,
    replication_factor: u32,
) -> Result<Vec<Vec<BrokerId>>, MetadataError> {
    // Draining brokers (being decommissioned) get no new replicas.
    let alive = state.placeable_brokers();
    let rf = replication_factor as usize;
    if rf == 0 || rf > alive.len() {
        return Err(MetadataError::rejected(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication factor {replication_factor} must be between 1 and the {} alive brokers not being decommissioned",
                alive.len()
            ),
        ));
    }
    let mut leader_counts: BTreeMap<BrokerId, usize> = alive.iter().map(|b| (*b, 0)).collect();
    for partition in state.topics.values().flat_map(|t| &t.partitions) {
        if let Some(count) = partition.leader.and_then(|l| leader_counts.get_mut(&l)) {
            *count += 1;
        }
    }
    let mut order = alive;
    order.sort_by_key(|b| (leader_counts[b], *b));
    let n = order.len();
    Ok((0..count as usize)
        .map(|p| (0..rf).map(|i| order[(p + i) % n]).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionState, Topic};

    fn state_with_brokers(ids: &[BrokerId]) -> MetadataState {
        MetadataState::with_brokers(ids)
    }

    fn leader_counts(placement: &[Vec<BrokerId>]) -> BTreeMap<BrokerId, usize> {
        let mut counts = BTreeMap::new();
        for replicas in placement {
            *counts.entry(replicas[0]).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn six_partitions_rf3_on_three_brokers_gives_two_leaders_each() {
        let state = state_with_brokers(&[1, 2, 3]);
        let placement = place_replicas(&state, 6, 3).unwrap_or_default();
        assert_eq!(placement.len(), 6);
        assert_eq!(
            leader_counts(&placement),
            BTreeMap::from([(1, 2), (2, 2), (3, 2)])
        );
        for replicas in &placement {
            let mut sorted = replicas.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "replicas are distinct: {replicas:?}");
        }
    }

    #[test]
    fn new_topics_start_on_the_brokers_that_lead_least() {
        let mut state = state_with_brokers(&[1, 2, 3]);
        state.topics.insert(
            "a".into(),
            Topic {
                name: "a".into(),
                topic_id: "x".into(),
                configs: BTreeMap::new(),
                partitions: vec![PartitionState {
                    partition: 0,
                    replicas: vec![1],
                    leader: Some(1),
                    leader_epoch: 0,
                    isr: vec![1],
                    partition_epoch: 0,
                    elr: Vec::new(),
                    unclean_leader_epoch: None,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }],
            },
        );
        let placement = place_replicas(&state, 2, 1).unwrap_or_default();
        assert_eq!(placement, vec![vec![2], vec![3]]);
    }

    #[test]
    fn fenced_brokers_get_nothing_and_rf_is_bounded_by_alive_brokers() {
        let mut state = state_with_brokers(&[1, 2, 3]);
        if let Some(b) = state.brokers.get_mut(&3) {
            b.fenced = true;
        }
        let placement = place_replicas(&state, 4, 2).unwrap_or_default();
        assert!(placement.iter().flatten().all(|b| *b != 3));
        for rf in [0, 3] {
            let err = place_replicas(&state, 1, rf).err().map(|e| e.code());
            assert_eq!(err, Some(ErrorCode::InvalidReplicationFactor));
        }
    }
}
