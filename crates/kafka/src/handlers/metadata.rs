//! Metadata (brokers on the client's listener, topics, partitions with leaders, epochs,
//! replicas and ISRs; auto-creation) and DescribeCluster.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::controller::topics::validate_topic_name;
use rill_metadata::model::{MetadataState, Topic};
use rill_metadata::ControllerRequest;
use tracing::{debug, info};

use super::{code, Context};
use rill_common::listeners::host_port;

/// Kafka's "no authorized operations computed" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub(crate) async fn metadata(ctx: &Context<'_>, request: MetadataRequest) -> MetadataResponse {
    let requested: Option<Vec<String>> = match request.topics {
        // v0: an empty list means every topic.
        Some(topics) if ctx.version == 0 && topics.is_empty() => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
        None => None,
    };
    let auto_create = ctx.backends.settings.auto_create_topics
        && (ctx.version < 4 || request.allow_auto_topic_creation);
    let mut state = ctx.backends.metadata.state();
    if let (Some(names), true) = (&requested, auto_create) {
        // Auto-creation is a CREATE, on the cluster or on the topic.
        let may_create = |name: &str| {
            ctx.may(
                Operation::Create,
                ResourceType::Cluster,
                ResourceType::CLUSTER_NAME,
            ) || ctx.allowed(Operation::Create, ResourceType::Topic, name)
        };
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !state.topics.contains_key(*n) && may_create(n))
            .collect();
        if !missing.is_empty() {
            for name in missing {
                auto_create_topic(ctx, name, &state).await;
            }
            state = ctx.backends.metadata.state();
        }
    }
    let topics = match requested {
        Some(names) => names
            .iter()
            .map(|name| match state.topics.get(name) {
                _ if !ctx.allowed(Operation::Describe, ResourceType::Topic, name) => {
                    MetadataResponseTopic::default()
                        .with_error_code(code(ErrorCode::TopicAuthorizationFailed))
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_topic_authorized_operations(OPERATIONS_OMITTED)
                }
                Some(topic) => topic_metadata(&state, topic),
                None => MetadataResponseTopic::default()
                    .with_error_code(code(if validate_topic_name(name).is_ok() {
                        ErrorCode::UnknownTopicOrPartition
                    } else {
                        ErrorCode::InvalidTopicException
                    }))
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    .with_topic_authorized_operations(OPERATIONS_OMITTED),
            })
            .collect(),
        // Every topic: those the principal may describe.
        None => state
            .topics
            .values()
            .filter(|t| ctx.may(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| topic_metadata(&state, t))
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers(ctx.listener, &state))
        .with_cluster_id(state.cluster_id.clone().map(StrBytes::from_string))
        .with_controller_id(BrokerId(controller_id(ctx, &state)))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// Creates a topic a client asked for by name, with the node's defaults. A failure
/// (a bad name, too few brokers, a race with another creator) shows in the response as
/// the topic's error; it is logged, not fatal.
async fn auto_create_topic(ctx: &Context<'_>, name: &str, state: &MetadataState) {
    if validate_topic_name(name).is_err() {
        return;
    }
    let settings = &ctx.backends.settings;
    let alive = state.brokers.values().filter(|b| b.is_alive()).count() as u32;
    let replication_factor = settings.default_replication_factor.min(alive).max(1);
    let request = ControllerRequest::CreateTopic {
        name: name.to_string(),
        partitions: settings.num_partitions.max(1),
        replication_factor,
        configs: Default::default(),
    };
    match ctx.backends.metadata.submit(request).await {
        Ok(_) => info!(topic = name, replication_factor, "auto-created a topic"),
        Err(e) => debug!(topic = name, "auto-creating the topic failed: {e}"),
    }
}

/// Alive brokers with an address on `listener`.
fn brokers(listener: &str, state: &MetadataState) -> Vec<MetadataResponseBroker> {
    state
        .brokers
        .values()
        .filter(|b| b.is_alive())
        .filter_map(|b| {
            let (host, port) = host_port(b.listeners.kafka.get(listener)?)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id as i32))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port),
            )
        })
        .collect()
}

/// The controller id clients send admin requests to: the metadata leader if it is an
/// alive broker, else this node. Every node forwards controller work to the leader, so
/// either answers.
fn controller_id(ctx: &Context<'_>, state: &MetadataState) -> i32 {
    let leader = ctx.backends.metadata.controller_info().leader_id;
    let id = leader
        .filter(|id| state.brokers.get(id).is_some_and(|b| b.is_alive()))
        .unwrap_or(ctx.backends.node_id);
    id as i32
}

fn topic_metadata(state: &MetadataState, topic: &Topic) -> MetadataResponseTopic {
    let alive = |id: &u64| state.brokers.get(id).is_some_and(|b| b.is_alive());
    let ids = |v: &[u64]| v.iter().map(|id| BrokerId(*id as i32)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let offline: Vec<u64> = p.replicas.iter().copied().filter(|r| !alive(r)).collect();
            MetadataResponsePartition::default()
                .with_error_code(match p.leader {
                    Some(_) => 0,
                    None => code(ErrorCode::LeaderNotAvailable),
                })
                .with_partition_index(p.partition as i32)
                .with_leader_id(BrokerId(p.leader.map_or(-1, |l| l as i32)))
                .with_leader_epoch(p.leader_epoch as i32)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(uuid::Uuid::parse_str(&topic.topic_id).unwrap_or_default())
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

pub(crate) fn describe_cluster(
    ctx: &Context<'_>,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let state = ctx.backends.metadata.state();
    let brokers = brokers(ctx.listener, &state)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(b.node_id)
                .with_host(b.host)
                .with_port(b.port)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            state.cluster_id.clone().unwrap_or_default(),
        ))
        .with_controller_id(BrokerId(controller_id(ctx, &state)))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}
