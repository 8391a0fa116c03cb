//! Topic administration decisions: validate a request against the current metadata and
//! turn it into the command to write.

use std::collections::BTreeMap;

use rill_common::ErrorCode;

use crate::controller::{config, placement};
use crate::model::{MetadataCommand, MetadataState, PartitionState, Topic};
use crate::MetadataError;

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// An upper bound that keeps one request from creating an unreasonable number of logs.
pub const MAX_PARTITIONS: u32 = 10_000;

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let problem = if name.is_empty() {
        Some("topic name is empty".to_string())
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        Some(format!(
            "topic name is {} characters; at most {MAX_TOPIC_NAME_LEN} allowed",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some(format!("topic name cannot be '{name}'"))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| {
                format!("topic name '{name}' has the illegal character {c:?}; use [a-zA-Z0-9._-]")
            })
    };
    match problem {
        Some(message) => Err(MetadataError::rejected(
            ErrorCode::InvalidTopicException,
            message,
        )),
        None => Ok(()),
    }
}

pub fn plan_create_topic(
    state: &MetadataState,
    name: &str,
    partitions: u32,
    replication_factor: u32,
    configs: &BTreeMap<String, String>,
    topic_id: String,
) -> Result<MetadataCommand, MetadataError> {
    validate_topic_name(name)?;
    if state.topics.contains_key(name) {
        return Err(MetadataError::rejected(
            ErrorCode::TopicAlreadyExists,
            format!("topic '{name}' already exists"),
        ));
    }
    validate_partition_count(partitions)?;
    config::validate(configs, replication_factor as usize)?;
    let placement = placement::place_replicas(state, partitions, replication_factor)?;
    let partitions = new_partitions(0, placement);
    Ok(MetadataCommand::CreateTopic {
        topic: Topic {
            name: name.to_string(),
            topic_id,
            configs: configs.clone(),
            partitions,
        },
    })
}

pub fn plan_delete_topic(
    state: &MetadataState,
    name: &str,
) -> Result<MetadataCommand, MetadataError> {
    existing_topic(state, name)?;
    Ok(MetadataCommand::DeleteTopic {
        name: name.to_string(),
    })
}

/// Grows a topic to `total` partitions (Kafka never shrinks one).
pub fn plan_create_partitions(
    state: &MetadataState,
    name: &str,
    total: u32,
) -> Result<MetadataCommand, MetadataError> {
    let topic = existing_topic(state, name)?;
    let current = topic.partitions.len() as u32;
    validate_partition_count(total)?;
    if total <= current {
        return Err(MetadataError::rejected(
            ErrorCode::InvalidPartitions,
            format!("topic '{name}' has {current} partitions; the new total must be larger, got {total}"),
        ));
    }
    let rf = topic.replication_factor() as u32;
    let placement = placement::place_replicas(state, total - current, rf)?;
    Ok(MetadataCommand::CreatePartitions {
        name: name.to_string(),
        partitions: new_partitions(current, placement),
    })
}

/// Sets the given keys; an empty value removes an override (back to the default).
pub fn plan_alter_configs(
    state: &MetadataState,
    name: &str,
    changes: &BTreeMap<String, String>,
) -> Result<MetadataCommand, MetadataError> {
    let topic = existing_topic(state, name)?;
    let mut configs = topic.configs.clone();
    for (key, value) in changes {
        if value.is_empty() {
            configs.remove(key);
        } else {
            configs.insert(key.clone(), value.clone());
        }
    }
    config::validate(&configs, topic.replication_factor())?;
    Ok(MetadataCommand::AlterConfigs {
        name: name.to_string(),
        configs,
    })
}

fn existing_topic<'a>(state: &'a MetadataState, name: &str) -> Result<&'a Topic, MetadataError> {
    state.topics.get(name).ok_or_else(|| {
        MetadataError::rejected(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })
}

fn validate_partition_count(partitions: u32) -> Result<(), MetadataError> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(MetadataError::rejected(
            ErrorCode::InvalidPartitions,
            format!("partition count must be between 1 and {MAX_PARTITIONS}, got {partitions}"),
        ));
    }
    Ok(())
}

/// Fresh partitions: the first replica leads, every replica is in sync.
fn new_partitions(first: u32, placement: Vec<Vec<u64>>) -> Vec<PartitionState> {
    placement
        .into_iter()
        .zip(first..)
        .map(|(replicas, partition)| PartitionState {
            partition,
            leader: replicas.first().copied(),
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
            partition_epoch: 0,
            elr: Vec::new(),
            unclean_leader_epoch: None,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> MetadataState {
        MetadataState::with_brokers(&[1, 2, 3])
    }

    fn create(
        state: &mut MetadataState,
        name: &str,
        partitions: u32,
        rf: u32,
    ) -> Result<(), MetadataError> {
        let cmd = plan_create_topic(
            state,
            name,
            partitions,
            rf,
            &BTreeMap::new(),
            format!("id-{name}"),
        )?;
        state.apply(cmd, 10).map(|_| ())
    }

    fn code(r: Result<impl std::fmt::Debug, MetadataError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünï",
            &"x".repeat(250),
        ] {
            assert_eq!(
                code(validate_topic_name(bad)),
                Some(ErrorCode::InvalidTopicException),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_topic_assigns_leaders_isr_and_rejects_duplicates() {
        let mut state = cluster();
        assert!(create(&mut state, "t", 6, 3).is_ok());
        let topic = &state.topics["t"];
        assert_eq!(topic.partitions.len(), 6);
        for (i, p) in topic.partitions.iter().enumerate() {
            assert_eq!(p.partition as usize, i);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, Some(p.replicas[0]));
        }
        assert_eq!(
            code(create(&mut state, "t", 1, 1)),
            Some(ErrorCode::TopicAlreadyExists)
        );
    }

    #[test]
    fn bad_create_requests_get_their_codes_and_change_nothing() {
        let mut state = cluster();
        let before = state.clone();
        assert_eq!(
            code(create(&mut state, "t", 0, 1)),
            Some(ErrorCode::InvalidPartitions)
        );
        assert_eq!(
            code(create(&mut state, "t", 1, 4)),
            Some(ErrorCode::InvalidReplicationFactor)
        );
        assert_eq!(
            code(create(&mut state, "bad name", 1, 1)),
            Some(ErrorCode::InvalidTopicException)
        );
        let bad_config = BTreeMap::from([("retention.ms".to_string(), "x".to_string())]);
        assert_eq!(
            code(plan_create_topic(
                &state,
                "t",
                1,
                1,
                &bad_config,
                "i".into()
            )),
            Some(ErrorCode::InvalidConfig)
        );
        assert_eq!(state, before);
    }

    #[test]
    fn add_partitions_only_grows_and_keeps_the_replication_factor() {
        let mut state = cluster();
        assert!(create(&mut state, "t", 2, 2).is_ok());
        assert_eq!(
            code(plan_create_partitions(&state, "t", 2)),
            Some(ErrorCode::InvalidPartitions)
        );
        assert_eq!(
            code(plan_create_partitions(&state, "nope", 3)),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let cmd = plan_create_partitions(&state, "t", 5);
        assert!(cmd.is_ok());
        if let Ok(cmd) = cmd {
            assert!(state.apply(cmd, 11).is_ok());
        }
        let topic = &state.topics["t"];
        assert_eq!(topic.partitions.len(), 5);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 2));
        assert_eq!(topic.partitions[4].partition, 4);
    }

    #[test]
    fn alter_configs_merges_validates_and_removes_with_empty_values() {
        let mut state = cluster();
        assert!(create(&mut state, "t", 1, 3).is_ok());
        let set = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        if let Ok(cmd) = plan_alter_configs(&state, "t", &set) {
            assert!(state.apply(cmd, 12).is_ok());
        }
        assert_eq!(
            state.topics["t"]
                .configs
                .get("retention.ms")
                .map(String::as_str),
            Some("1000")
        );
        let bad = BTreeMap::from([("min.insync.replicas".to_string(), "5".to_string())]);
        assert_eq!(
            code(plan_alter_configs(&state, "t", &bad)),
            Some(ErrorCode::InvalidConfig)
        );
        let unset = BTreeMap::from([("retention.ms".to_string(), String::new())]);
        if let Ok(cmd) = plan_alter_configs(&state, "t", &unset) {
            assert!(state.apply(cmd, 13).is_ok());
        }
        assert!(state.topics["t"].configs.is_empty());
    }

    #[test]
    fn delete_topic_removes_it_and_unknown_topics_are_rejected() {
        let mut state = cluster();
        assert!(create(&mut state, "t", 1, 1).is_ok());
        if let Ok(cmd) = plan_delete_topic(&state, "t") {
            assert!(state.apply(cmd, 12).is_ok());
        }
        assert!(state.topics.is_empty());
        assert_eq!(
            code(plan_delete_topic(&state, "t")),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
    }
}
