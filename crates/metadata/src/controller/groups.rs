//! Controller decisions about consumer groups that do not need the coordinator: an
//! admin's offset reset, allowed only while nobody is in the group.

use rill_common::group::GroupState;
use rill_common::ErrorCode;

use crate::model::{MetadataCommand, MetadataState, OffsetCommit};
use crate::MetadataError;

/// Offsets an admin sets for `group_id`: every partition must exist and the group must
/// have no members (NON_EMPTY_GROUP), so no consumer's commit races the reset.
pub fn plan_reset_offsets(
    state: &MetadataState,
    group_id: &str,
    offsets: Vec<OffsetCommit>,
) -> Result<MetadataCommand, MetadataError> {
    if group_id.is_empty() {
        return Err(MetadataError::rejected(
            ErrorCode::InvalidGroupId,
            "the group id is empty",
        ));
    }
    if let Some(group) = state.groups.get(group_id) {
        if !matches!(group.state, GroupState::Empty | GroupState::Dead) {
            return Err(MetadataError::rejected(
                ErrorCode::NonEmptyGroup,
                format!(
                    "group {group_id} has {} member(s); stop them before resetting offsets",
                    group.members.len()
                ),
            ));
        }
    }
    if let Some(o) = offsets
        .iter()
        .find(|o| state.partition(&o.topic, o.partition).is_none())
    {
        return Err(MetadataError::rejected(
            ErrorCode::UnknownTopicOrPartition,
            format!("{}-{} does not exist", o.topic, o.partition),
        ));
    }
    Ok(MetadataCommand::CommitOffsets {
        group_id: group_id.to_string(),
        offsets,
    })
}

#[cfg(test)]
mod tests {
    use rill_common::group::GroupDescription;

    use super::*;
    use crate::model::{PartitionState, Topic};

    fn state(group_state: GroupState) -> MetadataState {
        let mut s = MetadataState::with_brokers(&[1]);
        s.topics.insert(
            "t".into(),
            Topic {
                name: "t".into(),
                topic_id: "id".into(),
                configs: Default::default(),
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
        s.groups.insert(
            "g".into(),
            GroupDescription {
                group_id: "g".into(),
                state: group_state,
                generation: 3,
                protocol_type: Some("consumer".into()),
                protocol: None,
                leader: None,
                members: Vec::new(),
            },
        );
        s
    }

    fn offset(topic: &str, partition: u32, offset: u64) -> OffsetCommit {
        OffsetCommit {
            topic: topic.into(),
            partition,
            offset,
            metadata: String::new(),
            leader_epoch: None,
        }
    }

    #[test]
    fn an_empty_group_can_be_reset_and_the_offsets_apply() {
        let mut s = state(GroupState::Empty);
        let command = plan_reset_offsets(&s, "g", vec![offset("t", 0, 5)]);
        assert!(command.is_ok());
        if let Ok(command) = command {
            assert!(s.apply(command, 1).is_ok());
        }
        assert_eq!(s.offsets["g"]["t"][&0].offset, 5);
        assert!(plan_reset_offsets(&s, "new-group", vec![offset("t", 0, 1)]).is_ok());
    }

    #[test]
    fn a_group_with_members_or_an_unknown_partition_is_refused() {
        let code = |r: Result<MetadataCommand, MetadataError>| r.err().map(|e| e.code());
        let s = state(GroupState::Stable);
        assert_eq!(
            code(plan_reset_offsets(&s, "g", vec![offset("t", 0, 5)])),
            Some(ErrorCode::NonEmptyGroup)
        );
        let s = state(GroupState::Empty);
        assert_eq!(
            code(plan_reset_offsets(&s, "g", vec![offset("t", 1, 5)])),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            code(plan_reset_offsets(&s, "", vec![])),
            Some(ErrorCode::InvalidGroupId)
        );
    }

    #[test]
    fn deleted_offsets_go_and_a_group_without_offsets_is_forgotten() {
        let mut s = state(GroupState::Empty);
        let commit = MetadataCommand::CommitOffsets {
            group_id: "g".into(),
            offsets: vec![offset("t", 0, 5), offset("t", 1, 7)],
        };
        assert!(s.apply(commit, 1).is_ok());
        let delete = |partitions: Vec<(String, u32)>| MetadataCommand::DeleteOffsets {
            group_id: "g".into(),
            partitions,
        };
        assert!(s.apply(delete(vec![("t".into(), 0)]), 2).is_ok());
        assert_eq!(s.offsets["g"]["t"].len(), 1);
        assert!(s.apply(delete(vec![("t".into(), 1)]), 3).is_ok());
        assert!(!s.offsets.contains_key("g"));
        assert!(s.apply(delete(vec![("t".into(), 1)]), 4).is_ok());
    }

    #[test]
    fn a_completed_transaction_commits_its_offsets_in_the_same_entry() {
        use rill_common::transaction::{ProducerIdAndEpoch, TxnDescription, TxnState};
        let mut s = state(GroupState::Empty);
        let mut txn = TxnDescription {
            transactional_id: "copier".into(),
            producer: ProducerIdAndEpoch {
                producer_id: 7,
                epoch: 2,
            },
            previous_producer: None,
            state: TxnState::CompleteCommit,
            timeout_ms: 60_000,
            started_ms: None,
            updated_ms: 1,
            partitions: Default::default(),
            offsets: Default::default(),
            marker_producer: None,
        };
        let put = |txn: &TxnDescription, offsets| MetadataCommand::PutTransaction {
            transaction: txn.clone(),
            offsets,
        };
        let offsets = vec![("g".to_string(), vec![offset("t", 0, 42)])];
        assert!(s.apply(put(&txn, offsets), 1).is_ok());
        assert_eq!(s.offsets["g"]["t"][&0].offset, 42);
        assert_eq!(s.transactions["copier"].state, TxnState::CompleteCommit);
        txn.state = TxnState::Dead;
        assert!(s.apply(put(&txn, Vec::new()), 2).is_ok());
        assert!(s.transactions.is_empty());
    }
}
