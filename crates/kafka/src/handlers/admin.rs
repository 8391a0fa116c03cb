//! CreateTopics, DeleteTopics, CreatePartitions and ElectLeaders: controller requests,
//! forwarded to the active controller by the metadata node; `validate_only` runs the
//! controller's pure plan on this node's metadata instead.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, ElectLeadersRequest, ElectLeadersResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::controller::{config, topics};
use rill_metadata::{ControllerRequest, MetadataError};

use super::configs::{config_source, DEFAULT_CONFIG};
use super::data::topic_name;
use super::{code, Context};

fn message(e: &MetadataError) -> Option<StrBytes> {
    Some(StrBytes::from_string(e.message()))
}

pub(crate) async fn create_topics(
    ctx: &Context<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let settings = &ctx.backends.settings;
    let mut results = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let partitions = match topic.num_partitions {
            -1 => settings.num_partitions,
            n => u32::try_from(n).unwrap_or(0),
        };
        let replication_factor = match topic.replication_factor {
            -1 => settings.default_replication_factor,
            n => u32::try_from(n).unwrap_or(0),
        };
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let may_create = ctx.may(
            Operation::Create,
            ResourceType::Cluster,
            ResourceType::CLUSTER_NAME,
        ) || ctx.allowed(Operation::Create, ResourceType::Topic, &name);
        if !may_create {
            results.push(result.with_error_code(code(ErrorCode::TopicAuthorizationFailed)));
            continue;
        }
        if !topic.assignments.is_empty() {
            results.push(
                result
                    .with_error_code(code(ErrorCode::InvalidReplicaAssignment))
                    .with_error_message(Some(StrBytes::from_static_str(
                        "manual replica assignments are not supported; replicas are placed by the controller",
                    ))),
            );
            continue;
        }
        let outcome = if request.validate_only {
            let state = ctx.backends.metadata.state();
            topics::plan_create_topic(
                &state,
                &name,
                partitions,
                replication_factor,
                &configs,
                String::new(),
            )
            .map(drop)
        } else {
            ctx.backends
                .metadata
                .submit(ControllerRequest::CreateTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs: configs.clone(),
                })
                .await
                .map(drop)
        };
        let result = match outcome {
            Ok(()) => {
                let state = ctx.backends.metadata.state();
                let topic_id = state
                    .topics
                    .get(&name)
                    .and_then(|t| uuid::Uuid::parse_str(&t.topic_id).ok())
                    .unwrap_or_default();
                let effective = config::effective(&configs, replication_factor as usize);
                result
                    .with_topic_id(topic_id)
                    .with_num_partitions(partitions as i32)
                    .with_replication_factor(replication_factor as i16)
                    .with_configs(Some(
                        effective
                            .into_iter()
                            .map(|(key, value)| {
                                CreatableTopicConfigs::default()
                                    .with_config_source(if configs.contains_key(&key) {
                                        config_source::DYNAMIC_TOPIC
                                    } else {
                                        DEFAULT_CONFIG
                                    })
                                    .with_name(StrBytes::from_string(key))
                                    .with_value(Some(StrBytes::from_string(value)))
                            })
                            .collect(),
                    ))
            }
            Err(e) => result
                .with_error_code(code(e.code()))
                .with_error_message(message(&e)),
        };
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete_topics(
    ctx: &Context<'_>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
    let state = ctx.backends.metadata.state();
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    wanted.extend(request.topics.iter().map(|t| {
        let by_id = (!t.topic_id.is_nil())
            .then(|| {
                state
                    .topics
                    .values()
                    .find(|topic| uuid::Uuid::parse_str(&topic.topic_id).ok() == Some(t.topic_id))
                    .map(|topic| topic.name.clone())
            })
            .flatten();
        (
            by_id.or_else(|| t.name.as_ref().map(|n| n.0.to_string())),
            t.topic_id,
        )
    }));
    let mut responses = Vec::new();
    for (name, topic_id) in wanted {
        let result = DeletableTopicResult::default()
            .with_name(name.clone().map(topic_name))
            .with_topic_id(topic_id);
        let Some(name) = name else {
            responses.push(result.with_error_code(code(ErrorCode::UnknownTopicId)));
            continue;
        };
        if !ctx.allowed(Operation::Delete, ResourceType::Topic, &name) {
            responses.push(result.with_error_code(code(ErrorCode::TopicAuthorizationFailed)));
            continue;
        }
        let result = match ctx
            .backends
            .metadata
            .submit(ControllerRequest::DeleteTopic { name })
            .await
        {
            Ok(_) => result,
            Err(e) => result
                .with_error_code(code(e.code()))
                .with_error_message(message(&e)),
        };
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(crate) async fn create_partitions(
    ctx: &Context<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let total = u32::try_from(topic.count).unwrap_or(0);
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if !ctx.allowed(Operation::Alter, ResourceType::Topic, &name) {
            results.push(result.with_error_code(code(ErrorCode::TopicAuthorizationFailed)));
            continue;
        }
        if topic.assignments.is_some() {
            results.push(
                result
                    .with_error_code(code(ErrorCode::InvalidReplicaAssignment))
                    .with_error_message(Some(StrBytes::from_static_str(
                        "manual replica assignments are not supported",
                    ))),
            );
            continue;
        }
        let outcome = if request.validate_only {
            topics::plan_create_partitions(&ctx.backends.metadata.state(), &name, total).map(drop)
        } else {
            ctx.backends
                .metadata
                .submit(ControllerRequest::CreatePartitions { name, total })
                .await
                .map(drop)
        };
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(code(e.code()))
                .with_error_message(message(&e)),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// One partition's election: done, or why not.
type Outcome = Result<(), (ErrorCode, String)>;

/// Kafka's election types.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(crate) async fn elect_leaders(
    ctx: &Context<'_>,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let metadata = &ctx.backends.metadata;
    if !ctx.allowed(
        Operation::Alter,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    ) {
        return ElectLeadersResponse::default()
            .with_error_code(code(ErrorCode::ClusterAuthorizationFailed));
    }
    let before = metadata.state();
    // Which partitions: those named, or (null) every partition.
    let wanted: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        None => before
            .topics
            .values()
            .map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect()))
            .collect(),
    };
    let mut results = Vec::new();
    for (topic, partitions) in wanted {
        let mut outcomes: Vec<(i32, Outcome)> = Vec::new();
        match request.election_type {
            PREFERRED => {
                let submitted = metadata
                    .submit(ControllerRequest::ElectPreferredLeaders {
                        topic: Some(topic.clone()),
                    })
                    .await;
                let after = metadata.state();
                for partition in partitions {
                    let state_of = |s: &rill_metadata::model::MetadataState| {
                        s.topics
                            .get(&topic)
                            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
                            .map(|p| (p.leader, p.replicas.first().copied()))
                    };
                    let outcome = match (&submitted, state_of(&before), state_of(&after)) {
                        (_, None, _) | (_, _, None) => Err((
                            ErrorCode::UnknownTopicOrPartition,
                            "no such partition".into(),
                        )),
                        (_, Some((was, preferred)), _) if was.is_some() && was == preferred => {
                            Err((
                                ErrorCode::ElectionNotNeeded,
                                "the preferred replica leads".into(),
                            ))
                        }
                        (Err(e), _, _) => Err((e.code(), e.message())),
                        (Ok(_), _, Some((now, preferred))) if now.is_some() && now == preferred => {
                            Ok(())
                        }
                        (Ok(_), _, Some(_)) => Err((
                            ErrorCode::PreferredLeaderNotAvailable,
                            "the preferred replica is not alive and in the ISR".into(),
                        )),
                    };
                    outcomes.push((partition, outcome));
                }
            }
            UNCLEAN => {
                for partition in partitions {
                    let outcome = match u32::try_from(partition) {
                        Ok(p) => metadata
                            .submit(ControllerRequest::ElectUncleanLeader {
                                topic: topic.clone(),
                                partition: p,
                                candidate: None,
                            })
                            .await
                            .map(drop)
                            .map_err(|e| (e.code(), e.message())),
                        Err(_) => Err((
                            ErrorCode::UnknownTopicOrPartition,
                            "no such partition".into(),
                        )),
                    };
                    outcomes.push((partition, outcome));
                }
            }
            other => {
                for partition in partitions {
                    outcomes.push((
                        partition,
                        Err((ErrorCode::InvalidRequest, format!("election type {other}"))),
                    ));
                }
            }
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(topic)))
                .with_partition_result(
                    outcomes
                        .into_iter()
                        .map(|(partition, outcome)| {
                            let r = PartitionResult::default().with_partition_id(partition);
                            match outcome {
                                Ok(()) => r,
                                Err((e, why)) => r
                                    .with_error_code(code(e))
                                    .with_error_message(Some(StrBytes::from_string(why))),
                            }
                        })
                        .collect(),
                ),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
