//! ISR changes a partition leader asks for (AlterPartition), validated against the
//! current metadata: the partition epoch is the compare-and-set token.

use rill_common::{BrokerId, ErrorCode};

use crate::controller::config;
use crate::controller::liveness::next_elr;
use crate::model::{MetadataState, PartitionChange};
use crate::MetadataError;

/// What a leader asks: its view (leader epoch, partition epoch) and the ISR it wants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartition {
    pub broker_id: BrokerId,
    pub broker_epoch: u64,
    pub topic: String,
    pub partition: u32,
    pub leader_epoch: u64,
    pub partition_epoch: u64,
    pub isr: Vec<BrokerId>,
}

/// Accepts the change only from the current leader incarnation, at the current leader
/// and partition epochs, for an ISR that holds the leader, only assigned replicas, and
/// adds only alive brokers.
pub fn plan_alter_partition(
    state: &MetadataState,
    req: &AlterPartition,
) -> Result<PartitionChange, MetadataError> {
    state.current_broker(req.broker_id, req.broker_epoch)?;
    let p = state.partition(&req.topic, req.partition).ok_or_else(|| {
        MetadataError::rejected(
            ErrorCode::UnknownTopicOrPartition,
            format!("{}-{}", req.topic, req.partition),
        )
    })?;
    let reject = |code, message: String| Err(MetadataError::rejected(code, message));
    if p.leader != Some(req.broker_id) {
        return reject(
            ErrorCode::NotLeaderOrFollower,
            format!(
                "broker {} does not lead {}-{}",
                req.broker_id, req.topic, req.partition
            ),
        );
    }
    if p.leader_epoch != req.leader_epoch {
        return reject(
            ErrorCode::FencedLeaderEpoch,
            format!(
                "leader epoch {} is not the current {}",
                req.leader_epoch, p.leader_epoch
            ),
        );
    }
    if p.partition_epoch != req.partition_epoch {
        return reject(
            ErrorCode::InvalidUpdateVersion,
            format!(
                "partition epoch {} is not the current {}",
                req.partition_epoch, p.partition_epoch
            ),
        );
    }
    if !req.isr.contains(&req.broker_id) || req.isr.iter().any(|b| !p.replicas.contains(b)) {
        return reject(
            ErrorCode::InvalidRequest,
            format!(
                "ISR {:?} must hold the leader and only replicas {:?}",
                req.isr, p.replicas
            ),
        );
    }
    let fenced_addition = req
        .isr
        .iter()
        .find(|b| !p.isr.contains(b) && !state.brokers.get(b).is_some_and(|x| x.is_alive()));
    if let Some(b) = fenced_addition {
        return reject(
            ErrorCode::InvalidRequest,
            format!("broker {b} is not alive and cannot join the ISR"),
        );
    }
    let mut isr = req.isr.clone();
    isr.sort_by_key(|b| p.replicas.iter().position(|r| r == b));
    isr.dedup();
    let min_isr = state.topics.get(&req.topic).map_or(1, |t| {
        config::min_insync_replicas(&t.configs, p.replicas.len())
    });
    Ok(PartitionChange {
        topic: req.topic.clone(),
        partition: req.partition,
        expected_partition_epoch: p.partition_epoch,
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        elr: next_elr(p, &isr, min_isr, &[]),
        isr,
        unclean: false,
        replicas: None,
    })
}

/// What the controller answers a batch of ISR changes: the changes to write (as one
/// entry) and, per request in order, the partition's next epoch or why it was refused.
#[derive(Debug, Default)]
pub struct AlterPartitionsPlan {
    pub changes: Vec<PartitionChange>,
    pub results: Vec<Result<u64, (ErrorCode, String)>>,
}

/// Plans each request on its own against `state`: one refused change does not hold
/// back the others. A partition asked for twice keeps its first request.
pub fn plan_alter_partitions(
    state: &MetadataState,
    requests: &[AlterPartition],
) -> AlterPartitionsPlan {
    let mut plan = AlterPartitionsPlan::default();
    let mut seen = std::collections::HashSet::new();
    for request in requests {
        let result = if !seen.insert((request.topic.as_str(), request.partition)) {
            Err(MetadataError::rejected(
                ErrorCode::InvalidRequest,
                format!(
                    "{}-{} asked twice in one request",
                    request.topic, request.partition
                ),
            ))
        } else {
            plan_alter_partition(state, request)
        };
        plan.results.push(match result {
            Ok(change) => {
                let next_epoch = change.expected_partition_epoch + 1;
                plan.changes.push(change);
                Ok(next_epoch)
            }
            Err(e) => Err((e.code(), e.message())),
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{MetadataCommand, PartitionState, Topic};

    fn state() -> MetadataState {
        let mut state = MetadataState::with_brokers(&[1, 2, 3]);
        state.topics.insert(
            "t".into(),
            Topic {
                name: "t".into(),
                topic_id: "id".into(),
                configs: BTreeMap::new(),
                partitions: vec![PartitionState {
                    partition: 0,
                    replicas: vec![1, 2, 3],
                    leader: Some(1),
                    leader_epoch: 4,
                    isr: vec![1, 2, 3],
                    partition_epoch: 7,
                    elr: Vec::new(),
                    unclean_leader_epoch: None,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }],
            },
        );
        state
    }

    fn request(isr: &[BrokerId]) -> AlterPartition {
        AlterPartition {
            broker_id: 1,
            broker_epoch: 10,
            topic: "t".into(),
            partition: 0,
            leader_epoch: 4,
            partition_epoch: 7,
            isr: isr.to_vec(),
        }
    }

    fn code(r: Result<PartitionChange, MetadataError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn the_leader_shrinks_and_expands_its_isr() {
        let mut s = state();
        let change = plan_alter_partition(&s, &request(&[1, 3]));
        assert!(matches!(&change, Ok(c) if c.isr == vec![1, 3]));
        if let Ok(change) = change {
            assert!(s
                .apply(
                    MetadataCommand::AlterPartitions {
                        changes: vec![change]
                    },
                    50
                )
                .is_ok());
        }
        let p = &s.topics["t"].partitions[0];
        assert_eq!(
            (p.isr.clone(), p.partition_epoch, p.leader_epoch),
            (vec![1, 3], 8, 4)
        );
        let mut again = request(&[3, 1, 2]);
        again.partition_epoch = 8;
        assert!(matches!(plan_alter_partition(&s, &again), Ok(c) if c.isr == vec![1, 2, 3]));
    }

    #[test]
    fn stale_or_invalid_requests_are_rejected() {
        let s = state();
        let mut stale = request(&[1, 2]);
        stale.partition_epoch = 6;
        assert_eq!(
            code(plan_alter_partition(&s, &stale)),
            Some(ErrorCode::InvalidUpdateVersion)
        );
        let mut old_leader = request(&[1, 2]);
        old_leader.leader_epoch = 3;
        assert_eq!(
            code(plan_alter_partition(&s, &old_leader)),
            Some(ErrorCode::FencedLeaderEpoch)
        );
        let mut not_leader = request(&[2, 3]);
        not_leader.broker_id = 2;
        not_leader.broker_epoch = 20;
        assert_eq!(
            code(plan_alter_partition(&s, &not_leader)),
            Some(ErrorCode::NotLeaderOrFollower)
        );
        let mut old_incarnation = request(&[1, 2]);
        old_incarnation.broker_epoch = 9;
        assert_eq!(
            code(plan_alter_partition(&s, &old_incarnation)),
            Some(ErrorCode::StaleBrokerEpoch)
        );
        assert_eq!(
            code(plan_alter_partition(&s, &request(&[2, 3]))),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(plan_alter_partition(&s, &request(&[1, 4]))),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn a_fenced_broker_cannot_join_the_isr() {
        let mut s = state();
        if let Some(p) = s.topics.get_mut("t").and_then(|t| t.partitions.get_mut(0)) {
            p.isr = vec![1];
        }
        if let Some(b) = s.brokers.get_mut(&3) {
            b.fenced = true;
        }
        assert_eq!(
            code(plan_alter_partition(&s, &request(&[1, 3]))),
            Some(ErrorCode::InvalidRequest)
        );
        assert!(plan_alter_partition(&s, &request(&[1, 2])).is_ok());
    }

    #[test]
    fn a_batch_writes_what_it_accepts_and_answers_each_request() {
        let mut s = state();
        for partition in [1, 2] {
            let mut other = s.topics["t"].partitions[0].clone();
            other.partition = partition;
            if let Some(t) = s.topics.get_mut("t") {
                t.partitions.push(other);
            }
        }
        let mut stale = request(&[1]);
        stale.partition = 1;
        stale.partition_epoch = 6;
        let mut third = request(&[1, 2]);
        third.partition = 2;
        let plan = plan_alter_partitions(&s, &[request(&[1, 3]), stale, third.clone(), third]);
        assert_eq!(plan.changes.len(), 2, "{plan:?}");
        let codes: Vec<_> = plan
            .results
            .iter()
            .map(|r| r.as_ref().map_err(|(code, _)| *code).copied())
            .collect();
        assert_eq!(
            codes,
            vec![
                Ok(8),
                Err(ErrorCode::InvalidUpdateVersion),
                Ok(8),
                Err(ErrorCode::InvalidRequest)
            ]
        );
        // One entry; a change whose partition moved on meanwhile is skipped alone.
        let mut changes = plan.changes;
        changes[1].expected_partition_epoch = 3;
        assert!(s
            .apply(MetadataCommand::AlterPartitions { changes }, 50)
            .is_ok());
        let isrs: Vec<_> = s.topics["t"]
            .partitions
            .iter()
            .map(|p| (p.isr.clone(), p.partition_epoch))
            .collect();
        assert_eq!(
            isrs,
            vec![(vec![1, 3], 8), (vec![1, 2, 3], 7), (vec![1, 2, 3], 7)]
        );
    }
}
