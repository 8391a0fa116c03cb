//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::IsolationLevel;
use rill_common::ErrorCode;

use super::data::topic_name;
use super::{code, Context};

pub(crate) fn list_offsets(ctx: &Context<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let replicas = &ctx.backends.replicas;
    let isolation = IsolationLevel::from_kafka(request.isolation_level);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let described = ctx.allowed(Operation::Describe, ResourceType::Topic, &name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !described {
                        return response.with_error_code(code(ErrorCode::TopicAuthorizationFailed));
                    }
                    let Ok(partition) = u32::try_from(p.partition_index) else {
                        return response.with_error_code(code(ErrorCode::UnknownTopicOrPartition));
                    };
                    match replicas.list_offsets(&name, partition, p.timestamp, isolation) {
                        Ok((Some((offset, timestamp)), _)) => response
                            .with_offset(offset as i64)
                            .with_timestamp(timestamp),
                        Ok((None, _)) => response,
                        Err(e) => response.with_error_code(code(e.code())),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub(crate) fn offset_for_leader_epoch(
    ctx: &Context<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let replicas = &ctx.backends.replicas;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let described = ctx.allowed(Operation::Describe, ResourceType::Topic, &name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !described {
                        return response.with_error_code(code(ErrorCode::TopicAuthorizationFailed));
                    }
                    let Ok(partition) = u32::try_from(p.partition) else {
                        return response.with_error_code(code(ErrorCode::UnknownTopicOrPartition));
                    };
                    match replicas.offset_for_leader_epoch(
                        &name,
                        partition,
                        p.leader_epoch,
                        p.current_leader_epoch,
                    ) {
                        Ok(Some((epoch, end))) => response
                            .with_leader_epoch(epoch)
                            .with_end_offset(end as i64),
                        Ok(None) => response,
                        Err(e) => response.with_error_code(code(e.code())),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

pub(crate) async fn delete_records(
    ctx: &Context<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let replicas = &ctx.backends.replicas;
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let deletable = ctx.allowed(Operation::Delete, ResourceType::Topic, &name);
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let result = match u32::try_from(p.partition_index) {
                _ if !deletable => {
                    result.with_error_code(code(ErrorCode::TopicAuthorizationFailed))
                }
                Ok(partition) => match replicas.delete_records(&name, partition, p.offset) {
                    Ok(low_watermark) => result.with_low_watermark(low_watermark as i64),
                    Err(e) => result.with_error_code(code(e.code())),
                },
                Err(_) => result.with_error_code(code(ErrorCode::UnknownTopicOrPartition)),
            };
            partitions.push(result);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(name))
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
