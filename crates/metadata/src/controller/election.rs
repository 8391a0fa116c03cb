//! Preferred-leader election: a partition's first replica is its preferred leader
//! (placement spreads those evenly), so moving leadership back to it once it is alive and
//! in the ISR restores the balance that failovers disturbed.

use rill_common::ErrorCode;

use crate::controller::liveness::change_if_different;
use crate::model::{MetadataState, PartitionChange};
use crate::MetadataError;

/// Leader changes that hand each partition (of `topic`, or of every topic) back to its
/// preferred replica where that replica is alive, in the ISR and not leading already.
pub fn preferred_leader_changes(
    state: &MetadataState,
    topic: Option<&str>,
) -> Result<Vec<PartitionChange>, MetadataError> {
    if let Some(name) = topic {
        if !state.topics.contains_key(name) {
            return Err(MetadataError::rejected(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            ));
        }
    }
    Ok(state
        .topics
        .values()
        .filter(|t| topic.is_none_or(|name| t.name == name))
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
        .filter_map(|(name, p)| {
            let preferred = *p.replicas.first()?;
            let eligible = p.leader != Some(preferred)
                && p.isr.contains(&preferred)
                && state.brokers.get(&preferred).is_some_and(|b| b.is_alive());
            eligible
                .then(|| {
                    change_if_different(name, p, Some(preferred), p.isr.clone(), p.elr.clone())
                })
                .flatten()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetadataCommand;

    fn state_led_by(leader: u64, isr: &[u64]) -> MetadataState {
        let mut s = MetadataState::with_brokers(&[1, 2, 3]);
        let topic = crate::model::Topic {
            name: "t".into(),
            topic_id: "id".into(),
            configs: Default::default(),
            partitions: vec![crate::model::PartitionState {
                partition: 0,
                replicas: vec![1, 2, 3],
                leader: Some(leader),
                leader_epoch: 4,
                isr: isr.to_vec(),
                partition_epoch: 7,
                elr: Vec::new(),
                unclean_leader_epoch: None,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
        };
        s.topics.insert("t".into(), topic);
        s
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_in_the_isr() {
        let mut s = state_led_by(2, &[1, 2, 3]);
        let changes = preferred_leader_changes(&s, None).unwrap_or_default();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].leader, changes[0].leader_epoch), (Some(1), 5));
        assert!(s
            .apply(MetadataCommand::ElectLeaders { changes }, 10)
            .is_ok());
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 5));
        assert!(preferred_leader_changes(&s, Some("t"))
            .unwrap_or_default()
            .is_empty());
    }

    #[test]
    fn a_preferred_replica_out_of_the_isr_or_fenced_is_not_elected() {
        let s = state_led_by(2, &[2, 3]);
        assert!(preferred_leader_changes(&s, None)
            .unwrap_or_default()
            .is_empty());
        let mut s = state_led_by(2, &[1, 2, 3]);
        if let Some(b) = s.brokers.get_mut(&1) {
            b.fenced = true;
        }
        assert!(preferred_leader_changes(&s, None)
            .unwrap_or_default()
            .is_empty());
    }

    #[test]
    fn an_unknown_topic_is_an_error() {
        let s = state_led_by(1, &[1, 2, 3]);
        let err = preferred_leader_changes(&s, Some("nope"))
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::UnknownTopicOrPartition));
    }
}
