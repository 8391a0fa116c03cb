//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): the controller's
//! reassignment requests, translated.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::controller::reassignment::{self, ReassignmentRequest};
use rill_metadata::{ControllerReply, ControllerRequest};

use super::{code, Context};

type Outcome = Result<(), (ErrorCode, String)>;

/// A partition as asked, with its outcome when refused before reaching the controller.
type AskedPartition = (i32, Option<Outcome>);

fn broker_ids(ids: &[u64]) -> Vec<BrokerId> {
    ids.iter()
        .map(|b| BrokerId(i32::try_from(*b).unwrap_or(i32::MAX)))
        .collect()
}

fn partition_response(partition: i32, outcome: Outcome) -> ReassignablePartitionResponse {
    let r = ReassignablePartitionResponse::default().with_partition_index(partition);
    match outcome {
        Ok(()) => r.with_error_message(None),
        Err((e, why)) => r
            .with_error_code(code(e))
            .with_error_message(Some(StrBytes::from_string(why))),
    }
}

pub(crate) async fn alter_partition_reassignments(
    ctx: &Context<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.allowed(
        Operation::Alter,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    ) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(code(ErrorCode::ClusterAuthorizationFailed));
    }
    // Per topic, in order: each partition and its outcome (filled below).
    let mut outcomes: Vec<(TopicName, Vec<AskedPartition>)> = Vec::new();
    let mut requests = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let target = match p.replicas {
                None => Ok(None),
                Some(ids) => ids
                    .iter()
                    .map(|b| u64::try_from(b.0))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
            };
            match (u32::try_from(p.partition_index), target) {
                (Ok(partition), Ok(target)) => {
                    requests.push(ReassignmentRequest {
                        topic: topic.name.0.to_string(),
                        partition,
                        target,
                    });
                    partitions.push((p.partition_index, None));
                }
                (Err(_), _) => partitions.push((
                    p.partition_index,
                    Some(Err((
                        ErrorCode::UnknownTopicOrPartition,
                        "no such partition".into(),
                    ))),
                )),
                (_, Err(_)) => partitions.push((
                    p.partition_index,
                    Some(Err((
                        ErrorCode::InvalidReplicaAssignment,
                        "a broker id is negative".into(),
                    ))),
                )),
            }
        }
        outcomes.push((topic.name, partitions));
    }
    let mut results: Vec<Outcome> = if requests.is_empty() {
        Vec::new()
    } else {
        let count = requests.len();
        match ctx
            .backends
            .metadata
            .submit(ControllerRequest::AlterReassignments(requests))
            .await
        {
            Ok(ControllerReply::Reassignments { results, .. }) => results,
            Ok(_) => vec![Err((ErrorCode::UnknownServerError, "unexpected reply".into())); count],
            Err(e) => vec![Err((e.code(), e.message())); count],
        }
    };
    results.reverse();
    let responses = outcomes
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, outcome)| {
                    let outcome = outcome.or_else(|| results.pop()).unwrap_or_else(|| {
                        Err((ErrorCode::UnknownServerError, "no result".into()))
                    });
                    partition_response(index, outcome)
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_responses(responses)
}

pub(crate) fn list_partition_reassignments(
    ctx: &Context<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.allowed(
        Operation::Describe,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    ) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(code(ErrorCode::ClusterAuthorizationFailed));
    }
    // Null: every partition; else the partitions named.
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let state = ctx.backends.metadata.state();
    let mut topics: BTreeMap<&str, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for (topic, p) in reassignment::in_progress(&state) {
        let named = wanted.as_ref().is_none_or(|w| {
            w.get(topic)
                .is_some_and(|ps| ps.contains(&(p.partition as i32)))
        });
        if !named {
            continue;
        }
        topics.entry(topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(p.partition as i32)
                .with_replicas(broker_ids(&p.replicas))
                .with_adding_replicas(broker_ids(&p.adding_replicas))
                .with_removing_replicas(broker_ids(&p.removing_replicas)),
        );
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OngoingTopicReassignment::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}
