//! DeleteGroups and OffsetDelete: the group coordinator decides (empty groups only;
//! offsets of topics the group's members consume stay), this edge translates.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};

use kafka_protocol::protocol::StrBytes;

use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;

use super::{code, Context};

pub(crate) async fn delete_groups(
    ctx: &Context<'_>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let (group_ids, denied): (Vec<String>, Vec<String>) = request
        .groups_names
        .iter()
        .map(|g| g.0.to_string())
        .partition(|g| ctx.allowed(Operation::Delete, ResourceType::Group, g));
    let mut results = match ctx.backends.groups.delete_groups(&group_ids).await {
        Ok(results) => results
            .into_iter()
            .map(|(group_id, result)| (group_id, result.err()))
            .collect::<Vec<_>>(),
        Err(e) => group_ids
            .into_iter()
            .map(|group_id| (group_id, Some(e.code())))
            .collect(),
    };
    results.extend(
        denied
            .into_iter()
            .map(|g| (g, Some(ErrorCode::GroupAuthorizationFailed))),
    );
    DeleteGroupsResponse::default().with_results(
        results
            .into_iter()
            .map(|(group_id, error)| {
                DeletableGroupResult::default()
                    .with_group_id(StrBytes::from_string(group_id).into())
                    .with_error_code(error.map_or(0, code))
            })
            .collect(),
    )
}

pub(crate) async fn offset_delete(
    ctx: &Context<'_>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    // Partition indexes below zero cannot exist; they are answered as unknown.
    let partitions: Vec<(String, u32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let partition = u32::try_from(p.partition_index).unwrap_or(u32::MAX);
                (t.name.0.to_string(), partition)
            })
        })
        .collect();
    if !ctx.allowed(Operation::Delete, ResourceType::Group, &request.group_id.0) {
        return OffsetDeleteResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    let results = match ctx
        .backends
        .groups
        .delete_offsets(request.group_id.0.as_str(), &partitions)
        .await
    {
        Ok(results) => results,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(code(e.code())),
    };
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for ((topic, partition), result) in results {
        let answer = OffsetDeleteResponsePartition::default()
            .with_partition_index(i32::try_from(partition).unwrap_or(-1))
            .with_error_code(result.err().map_or(0, code));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(answer),
            None => topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(StrBytes::from_string(topic).into())
                    .with_partitions(vec![answer]),
            ),
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
