//! Produce, Fetch and InitProducerId: the data path, on the replica manager the gRPC
//! BrokerService uses.

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use rill_broker::divergence::Diverging;
use rill_broker::replica_manager::{request_wait, FetchLimits, FetchPartitionRequest, Produced};
use rill_broker::{Acks, BrokerError};
use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::IsolationLevel;
use rill_common::ErrorCode;

use super::{code, Context, Reply};

pub(crate) async fn produce(ctx: &Context<'_>, request: ProduceRequest) -> Reply {
    let acks = Acks::from_wire(i32::from(request.acks));
    let timeout = request_wait(i64::from(request.timeout_ms));
    let mut pending = Vec::new();
    for topic in &request.topic_data {
        for partition in &topic.partition_data {
            pending.push((
                topic.name.0.to_string(),
                partition.index,
                partition.records.clone(),
            ));
        }
    }
    let replicas = &ctx.backends.replicas;
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.as_str());
    let denied: std::collections::HashSet<&str> = request
        .topic_data
        .iter()
        .map(|t| t.name.0.as_str())
        .filter(|topic| !ctx.allowed(Operation::Write, ResourceType::Topic, topic))
        .collect();
    let results = join_all(pending.iter().map(|(topic, index, records)| async {
        if denied.contains(topic.as_str()) {
            return Err(ErrorCode::TopicAuthorizationFailed);
        }
        let acks = acks.as_ref().map_err(|_| ErrorCode::InvalidRequiredAcks)?;
        let partition = u32::try_from(*index).map_err(|_| ErrorCode::UnknownTopicOrPartition)?;
        let records = records.clone().ok_or(ErrorCode::InvalidRecord)?;
        replicas
            .produce(topic, partition, *acks, records, timeout, transactional_id)
            .await
            .map_err(|e| e.code())
    }))
    .await;
    if matches!(acks, Ok(Acks::None)) {
        // Kafka closes an acks=0 connection on an error: the client's only hint to
        // refresh its metadata.
        return match results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => Reply::Close(format!("acks=0 produce failed: {e}")),
            None => Reply::Nothing,
        };
    }
    let mut responses: Vec<TopicProduceResponse> = Vec::new();
    for ((topic, index, _), result) in pending.into_iter().zip(results) {
        let partition = match result {
            Ok(Produced {
                base_offset,
                log_start_offset,
            }) => PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(base_offset as i64)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(log_start_offset as i64),
            Err(e) => PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(code(e))
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(Some(StrBytes::from_static_str(e.as_str()))),
        };
        match responses.last_mut() {
            Some(t) if t.name.0.as_str() == topic => t.partition_responses.push(partition),
            _ => responses.push(
                TopicProduceResponse::default()
                    .with_name(topic_name(topic))
                    .with_partition_responses(vec![partition]),
            ),
        }
    }
    Reply::Response(Box::new(ResponseKind::Produce(
        ProduceResponse::default().with_responses(responses),
    )))
}

pub(crate) async fn fetch(ctx: &Context<'_>, request: FetchRequest) -> FetchResponse {
    let mut requests = Vec::new();
    let mut refused: Vec<(String, i32, ErrorCode)> = Vec::new();
    for topic in &request.topics {
        let readable = ctx.allowed(Operation::Read, ResourceType::Topic, &topic.topic.0);
        for p in &topic.partitions {
            let name = topic.topic.0.to_string();
            if !readable {
                refused.push((name, p.partition, ErrorCode::TopicAuthorizationFailed));
                continue;
            }
            match (u32::try_from(p.partition), u64::try_from(p.fetch_offset)) {
                (Ok(partition), Ok(fetch_offset)) => requests.push(FetchPartitionRequest {
                    topic: name,
                    partition,
                    fetch_offset,
                    max_bytes: FetchLimits::partition_max_bytes(i64::from(p.partition_max_bytes)),
                    current_leader_epoch: (p.current_leader_epoch >= 0)
                        .then_some(p.current_leader_epoch),
                    last_fetched_epoch: (p.last_fetched_epoch >= 0).then_some(p.last_fetched_epoch),
                    isolation: IsolationLevel::from_kafka(request.isolation_level),
                }),
                (Err(_), _) => {
                    refused.push((name, p.partition, ErrorCode::UnknownTopicOrPartition))
                }
                (_, Err(_)) => refused.push((name, p.partition, ErrorCode::OffsetOutOfRange)),
            }
        }
    }
    let limits = FetchLimits::new(
        i64::from(request.max_wait_ms),
        i64::from(request.min_bytes),
        i64::from(request.max_bytes),
    );
    // Kafka clients fetch as consumers: `replica_id` (a follower) is only honoured on
    // the internal gRPC protocol.
    let results = ctx.backends.replicas.fetch(None, &requests, limits).await;
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut push = |topic: String, data: PartitionData| match responses.last_mut() {
        Some(t) if t.topic.0.as_str() == topic => t.partitions.push(data),
        _ => responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![data]),
        ),
    };
    for result in results {
        let data = PartitionData::default().with_partition_index(result.partition as i32);
        let data = match result.result {
            Ok(fetched) => {
                let records = concat(&fetched.batches);
                let offsets = fetched.offsets;
                let mut data = data
                    .with_high_watermark(offsets.high_watermark as i64)
                    .with_last_stable_offset(offsets.last_stable_offset as i64)
                    .with_log_start_offset(offsets.log_start as i64)
                    .with_aborted_transactions(Some(
                        fetched
                            .aborted
                            .iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset as i64)
                            })
                            .collect(),
                    ))
                    .with_preferred_read_replica(BrokerId(-1))
                    .with_records(Some(records));
                if let Some(Diverging(end)) = fetched.diverging {
                    data = data.with_diverging_epoch(
                        EpochEndOffset::default()
                            .with_epoch(end.map_or(-1, |(e, _)| e))
                            .with_end_offset(end.map_or(-1, |(_, o)| o as i64)),
                    );
                }
                data
            }
            Err(e) => error_partition(data, &e),
        };
        push(result.topic, data);
    }
    for (topic, partition, e) in refused {
        push(
            topic,
            PartitionData::default()
                .with_partition_index(partition)
                .with_error_code(code(e))
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1)),
        );
    }
    FetchResponse::default().with_responses(responses)
}

fn error_partition(data: PartitionData, e: &BrokerError) -> PartitionData {
    data.with_error_code(code(e.code()))
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
}

fn concat(batches: &[Bytes]) -> Bytes {
    match batches {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut out = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
            for b in many {
                out.extend_from_slice(b);
            }
            out.freeze()
        }
    }
}

pub(crate) async fn init_producer_id(
    ctx: &Context<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(transactional_id) = request.transactional_id.as_ref() {
        let id = transactional_id.0.as_str();
        if !ctx.allowed(Operation::Write, ResourceType::TransactionalId, id) {
            return response.with_error_code(code(ErrorCode::TransactionalIdAuthorizationFailed));
        }
        return super::transactions::init_transactional_producer(
            ctx,
            transactional_id.0.as_str(),
            &request,
        )
        .await;
    }
    if !ctx.may_write_idempotently() {
        return response.with_error_code(code(ErrorCode::ClusterAuthorizationFailed));
    }
    match ctx.backends.producer_ids.next_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => response.with_error_code(code(match e.code() {
            // The controller could not be reached: the client retries.
            ErrorCode::NotLeaderOrFollower => ErrorCode::CoordinatorNotAvailable,
            other => other,
        })),
    }
}

pub(crate) fn topic_name(name: String) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(name))
}
