//! The transaction APIs (InitProducerId with a transactional id, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn) on the transaction coordinator the gRPC
//! TransactionService uses. Kafka clients speak transaction version 1 (EndTxn below v5):
//! the epoch stays across transactions, so EndTxn keeps it.

use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::ProducerIdAndEpoch;
use rill_common::ErrorCode;
use rill_coordinator::service::EndTxnVersion;

use super::groups::{requested_offsets, SentOffset};
use super::{code, Context};

fn producer(producer_id: ProducerId, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch {
        producer_id: producer_id.0,
        epoch,
    }
}

/// InitProducerId for a transactional producer (`transactional_id` set).
pub(crate) async fn init_transactional_producer(
    ctx: &Context<'_>,
    transactional_id: &str,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let Ok(timeout_ms) = u64::try_from(request.transaction_timeout_ms) else {
        return response.with_error_code(code(ErrorCode::InvalidTransactionTimeout));
    };
    // KIP-360 (v3+): a producer that had an id names it; -1 is none.
    let expected =
        (request.producer_id.0 >= 0).then(|| producer(request.producer_id, request.producer_epoch));
    match ctx
        .backends
        .transactions
        .init_producer_id(
            transactional_id,
            Duration::from_millis(timeout_ms),
            expected,
        )
        .await
    {
        Ok(p) => response
            .with_producer_id(ProducerId(p.producer_id))
            .with_producer_epoch(p.epoch),
        Err(e) => response.with_error_code(code(e.code())),
    }
}

/// Every transaction API needs WRITE on its transactional id.
fn writes_transactional_id(ctx: &Context<'_>, transactional_id: &str) -> bool {
    ctx.allowed(
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    )
}

pub(crate) async fn add_partitions_to_txn(
    ctx: &Context<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut partitions = Vec::new();
    let mut invalid = false;
    for topic in &request.v3_and_below_topics {
        for p in &topic.partitions {
            match u32::try_from(*p) {
                Ok(partition) => partitions.push((topic.name.0.to_string(), partition)),
                Err(_) => invalid = true,
            }
        }
    }
    let transactional_id = request.v3_and_below_transactional_id.0.as_str();
    let outcome = if !writes_transactional_id(ctx, transactional_id) {
        Err(ErrorCode::TransactionalIdAuthorizationFailed)
    } else if !request
        .v3_and_below_topics
        .iter()
        .all(|t| ctx.allowed(Operation::Write, ResourceType::Topic, &t.name.0))
    {
        Err(ErrorCode::TopicAuthorizationFailed)
    } else if invalid {
        Err(ErrorCode::UnknownTopicOrPartition)
    } else {
        ctx.backends
            .transactions
            .add_partitions(
                request.v3_and_below_transactional_id.0.as_str(),
                producer(
                    request.v3_and_below_producer_id,
                    request.v3_and_below_producer_epoch,
                ),
                &partitions,
            )
            .await
            .map_err(|e| e.code())
    };
    let error = outcome.err().map_or(0, code);
    let results = request
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name)
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub(crate) async fn add_offsets_to_txn(
    ctx: &Context<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    if !writes_transactional_id(ctx, &request.transactional_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(code(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    let outcome = ctx
        .backends
        .transactions
        .add_offsets(
            request.transactional_id.0.as_str(),
            producer(request.producer_id, request.producer_epoch),
            request.group_id.0.as_str(),
        )
        .await;
    AddOffsetsToTxnResponse::default().with_error_code(outcome.err().map_or(0, |e| code(e.code())))
}

pub(crate) async fn txn_offset_commit(
    ctx: &Context<'_>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let sent = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| SentOffset {
            topic: t.name.0.as_str(),
            partition_index: p.partition_index,
            committed_offset: p.committed_offset,
            committed_leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_ref(),
        })
    });
    let outcome = match requested_offsets(sent) {
        _ if !writes_transactional_id(ctx, &request.transactional_id.0) => {
            Err(ErrorCode::TransactionalIdAuthorizationFailed)
        }
        _ if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id.0) => {
            Err(ErrorCode::GroupAuthorizationFailed)
        }
        Err(e) => Err(e),
        Ok(offsets) => ctx
            .backends
            .transactions
            .commit_offsets(
                request.transactional_id.0.as_str(),
                producer(request.producer_id, request.producer_epoch),
                request.group_id.0.as_str(),
                request.member_id.as_str(),
                request
                    .group_instance_id
                    .as_ref()
                    .map(|i| i.as_str())
                    .filter(|i| !i.is_empty()),
                request.generation_id,
                offsets,
            )
            .await
            .map_err(|e| e.code()),
    };
    let error = outcome.err().map_or(0, code);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub(crate) async fn end_txn(ctx: &Context<'_>, request: EndTxnRequest) -> EndTxnResponse {
    if !writes_transactional_id(ctx, &request.transactional_id.0) {
        return EndTxnResponse::default()
            .with_error_code(code(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    let outcome = ctx
        .backends
        .transactions
        .end(
            request.transactional_id.0.as_str(),
            producer(request.producer_id, request.producer_epoch),
            request.committed,
            EndTxnVersion::KeepEpoch,
        )
        .await;
    let response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match outcome {
        Ok(p) => response
            .with_producer_id(ProducerId(p.producer_id))
            .with_producer_epoch(p.epoch),
        Err(e) => response.with_error_code(code(e.code())),
    }
}
