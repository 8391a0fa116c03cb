//! DescribeConfigs, AlterConfigs (replaces a topic's overrides) and
//! IncrementalAlterConfigs (sets or deletes single keys), for topics; brokers describe
//! the settings Kafka clients see.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::controller::{config, topics};
use rill_metadata::{ControllerRequest, MetadataError};

use super::{code, Context};

/// Kafka's resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Kafka's config sources.
pub(crate) mod config_source {
    pub const DYNAMIC_TOPIC: i8 = 1;
    pub const STATIC_BROKER: i8 = 4;
}
pub(crate) const DEFAULT_CONFIG: i8 = 5;

/// Kafka's config types (DescribeConfigs v3+).
fn config_type(key: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    match key {
        config::UNCLEAN_LEADER_ELECTION | "auto.create.topics.enable" => BOOLEAN,
        config::RETENTION_MS | config::RETENTION_BYTES => LONG,
        config::MIN_INSYNC_REPLICAS
        | config::MAX_MESSAGE_BYTES
        | "num.partitions"
        | "default.replication.factor" => INT,
        _ => STRING,
    }
}

pub(crate) fn describe_configs(
    ctx: &Context<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let state = ctx.backends.metadata.state();
    let settings = &ctx.backends.settings;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.to_string();
            // DESCRIBE_CONFIGS on the topic, or on the cluster for a broker's.
            let (resource_type, acl_name) = match resource.resource_type {
                TOPIC => (ResourceType::Topic, name.as_str()),
                _ => (ResourceType::Cluster, ResourceType::CLUSTER_NAME),
            };
            if !ctx.allowed(Operation::DescribeConfigs, resource_type, acl_name) {
                return result
                    .with_error_code(code(resource_type.authorization_failed()))
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "may not describe the configs of {} {acl_name:?}",
                        resource_type.name()
                    ))));
            }
            // (key, value, source)
            let entries: Vec<(String, String, i8)> = match resource.resource_type {
                TOPIC => match state.topics.get(&name) {
                    Some(topic) => config::effective(&topic.configs, topic.replication_factor())
                        .into_iter()
                        .map(|(k, v)| {
                            let source = if topic.configs.contains_key(&k) {
                                config_source::DYNAMIC_TOPIC
                            } else {
                                DEFAULT_CONFIG
                            };
                            (k, v, source)
                        })
                        .collect(),
                    None => {
                        return result
                            .with_error_code(code(ErrorCode::UnknownTopicOrPartition))
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "topic '{name}' does not exist"
                            ))))
                    }
                },
                BROKER => [
                    (
                        "auto.create.topics.enable",
                        settings.auto_create_topics.to_string(),
                    ),
                    ("num.partitions", settings.num_partitions.to_string()),
                    (
                        "default.replication.factor",
                        settings.default_replication_factor.to_string(),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v, config_source::STATIC_BROKER))
                .collect(),
                other => {
                    return result
                        .with_error_code(code(ErrorCode::InvalidRequest))
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "resource type {other} has no configs here"
                        ))))
                }
            };
            let wanted = |k: &String| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
            };
            result.with_configs(
                entries
                    .into_iter()
                    .filter(|(k, _, _)| wanted(k))
                    .map(|(k, v, source)| {
                        DescribeConfigsResourceResult::default()
                            .with_config_type(config_type(&k))
                            .with_name(StrBytes::from_string(k))
                            .with_value(Some(StrBytes::from_string(v)))
                            .with_read_only(resource.resource_type == BROKER)
                            .with_config_source(source)
                    })
                    .collect(),
            )
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Applies `changes` (empty value = back to the default) to a topic, or only checks
/// them with `validate_only`.
async fn alter_topic(
    ctx: &Context<'_>,
    resource_type: i8,
    name: &str,
    changes: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), MetadataError> {
    if resource_type != TOPIC {
        return Err(MetadataError::rejected(
            ErrorCode::InvalidRequest,
            "only topic configs can be altered",
        ));
    }
    if !ctx.allowed(Operation::AlterConfigs, ResourceType::Topic, name) {
        return Err(MetadataError::rejected(
            ErrorCode::TopicAuthorizationFailed,
            format!("no ALTER_CONFIGS on topic {name}"),
        ));
    }
    if validate_only {
        return topics::plan_alter_configs(&ctx.backends.metadata.state(), name, &changes)
            .map(drop);
    }
    ctx.backends
        .metadata
        .submit(ControllerRequest::AlterConfigs {
            name: name.to_string(),
            configs: changes,
        })
        .await
        .map(drop)
}

fn error_parts(result: &Result<(), MetadataError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => (code(e.code()), Some(StrBytes::from_string(e.message()))),
    }
}

pub(crate) async fn alter_configs(
    ctx: &Context<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        // The whole set is replaced: every override not given goes back to its default.
        let mut changes: BTreeMap<String, String> = ctx
            .backends
            .metadata
            .state()
            .topics
            .get(&name)
            .map(|t| {
                t.configs
                    .keys()
                    .map(|k| (k.clone(), String::new()))
                    .collect()
            })
            .unwrap_or_default();
        for c in &resource.configs {
            let value = c
                .value
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            changes.insert(c.name.to_string(), value);
        }
        let result = alter_topic(
            ctx,
            resource.resource_type,
            &name,
            changes,
            request.validate_only,
        )
        .await;
        let (error_code, error_message) = error_parts(&result);
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

pub(crate) async fn incremental_alter_configs(
    ctx: &Context<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut changes = BTreeMap::new();
        let mut refused = None;
        for c in &resource.configs {
            match c.config_operation {
                SET => {
                    let value = c.value.as_ref().map(ToString::to_string).unwrap_or_default();
                    changes.insert(c.name.to_string(), value);
                }
                DELETE => {
                    changes.insert(c.name.to_string(), String::new());
                }
                op => {
                    refused = Some(MetadataError::rejected(
                        ErrorCode::InvalidConfig,
                        format!("{}: operation {op} (APPEND/SUBTRACT) applies to list configs, and no topic config is a list", c.name),
                    ))
                }
            }
        }
        let result = match refused {
            Some(e) => Err(e),
            None => {
                alter_topic(
                    ctx,
                    resource.resource_type,
                    &name,
                    changes,
                    request.validate_only,
                )
                .await
            }
        };
        let (error_code, error_message) = error_parts(&result);
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
