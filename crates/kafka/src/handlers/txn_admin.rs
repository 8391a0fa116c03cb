//! The transaction admin APIs Kafka's tools use (kafka-transactions.sh, AdminClient):
//! DescribeTransactions and ListTransactions from the transaction coordinator,
//! DescribeProducers from a partition's leader, and WriteTxnMarkers to abort a hanging
//! transaction there (`ReplicaManager::abort_hanging_transaction` decides; COMMIT
//! markers are written by Rill's coordinator only).

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::{TxnDescription, TxnState};
use rill_common::ErrorCode;

use super::{code, Context};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn started_ms(d: &TxnDescription) -> i64 {
    d.started_ms
        .and_then(|ms| i64::try_from(ms).ok())
        .unwrap_or(-1)
}

pub(crate) async fn describe_transactions(
    ctx: &Context<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids: Vec<String> = request
        .transactional_ids
        .iter()
        .map(|id| id.0.to_string())
        .collect();
    let found = ctx.backends.transactions.describe(&ids).await;
    let states = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let state = DescribedState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            if !ctx.allowed(Operation::Describe, ResourceType::TransactionalId, id) {
                return state.with_error_code(code(ErrorCode::TransactionalIdAuthorizationFailed));
            }
            let description = match &found {
                Err(e) => return state.with_error_code(code(e.code())),
                Ok(found) => found.get(i).and_then(|(_, d)| d.as_ref()),
            };
            let Some(d) = description else {
                return state.with_error_code(code(ErrorCode::TransactionalIdNotFound));
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &d.partitions {
                let partition = i32::try_from(*partition).unwrap_or(i32::MAX);
                match topics.last_mut() {
                    Some(t) if t.topic.0.as_str() == topic => t.partitions.push(partition),
                    _ => topics.push(
                        TopicData::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(vec![partition]),
                    ),
                }
            }
            state
                .with_transaction_state(StrBytes::from_static_str(d.state.as_str()))
                .with_transaction_timeout_ms(i32::try_from(d.timeout_ms).unwrap_or(i32::MAX))
                .with_transaction_start_time_ms(started_ms(d))
                .with_producer_id(ProducerId(d.producer.producer_id))
                .with_producer_epoch(d.producer.epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub(crate) async fn list_transactions(
    ctx: &Context<'_>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let (mut states, mut unknown) = (Vec::new(), Vec::new());
    for name in &request.state_filters {
        match TxnState::ALL.iter().find(|s| s.as_str() == name.as_str()) {
            Some(s) => states.push(*s),
            None => unknown.push(name.clone()),
        }
    }
    let all = match ctx.backends.transactions.list().await {
        Ok(all) => all,
        // Each Kafka broker lists the transactions it coordinates: a node that is not
        // the coordinator has none (Kafka's admin clients ask every broker).
        Err(e) if e.code() == ErrorCode::NotCoordinator => Vec::new(),
        Err(e) => {
            return ListTransactionsResponse::default()
                .with_error_code(code(e.code()))
                .with_unknown_state_filters(unknown)
        }
    };
    let now = now_ms();
    let listed = all
        .iter()
        // A principal lists the transactional ids it may describe.
        .filter(|d| {
            ctx.may(
                Operation::Describe,
                ResourceType::TransactionalId,
                &d.transactional_id,
            )
        })
        .filter(|d| states.is_empty() || states.contains(&d.state))
        .filter(|d| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(d.producer.producer_id))
        })
        // v1: only transactions running for longer than the filter (ms).
        .filter(|d| {
            request.duration_filter < 0
                || (started_ms(d) >= 0 && now - started_ms(d) >= request.duration_filter)
        })
        .map(|d| {
            ListedState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    d.transactional_id.clone(),
                )))
                .with_producer_id(ProducerId(d.producer.producer_id))
                .with_transaction_state(StrBytes::from_static_str(d.state.as_str()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}

pub(crate) fn describe_producers(
    ctx: &Context<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            // READ on the topic, as Kafka asks.
            let readable = ctx.allowed(Operation::Read, ResourceType::Topic, t.name.0.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let response = PartitionResponse::default().with_partition_index(*p);
                    if !readable {
                        return response.with_error_code(code(ErrorCode::TopicAuthorizationFailed));
                    }
                    let described = u32::try_from(*p)
                        .map_err(|_| ErrorCode::UnknownTopicOrPartition)
                        .and_then(|partition| {
                            ctx.backends
                                .replicas
                                .describe_producers(t.name.0.as_str(), partition)
                                .map_err(|e| e.code())
                        });
                    match described {
                        Err(e) => response.with_error_code(code(e)),
                        Ok(producers) => response.with_active_producers(
                            producers
                                .into_iter()
                                .map(|d| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(d.producer_id))
                                        .with_producer_epoch(d.epoch.into())
                                        .with_last_sequence(d.last_sequence)
                                        .with_last_timestamp(d.last_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(
                                            d.open_transaction_start
                                                .and_then(|o| i64::try_from(o).ok())
                                                .unwrap_or(-1),
                                        )
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

pub(crate) async fn write_txn_markers(
    ctx: &Context<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka's admin abort of a hanging transaction needs CLUSTER_ACTION on the cluster.
    let authorized = ctx.allowed(
        Operation::ClusterAction,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    );
    let mut markers = Vec::new();
    for marker in request.markers {
        let mut topics = Vec::new();
        for topic in marker.topics {
            let mut partitions = Vec::new();
            for p in &topic.partition_indexes {
                let outcome = if !authorized {
                    Err(ErrorCode::ClusterAuthorizationFailed)
                } else if marker.transaction_result {
                    Err(ErrorCode::InvalidRequest)
                } else {
                    match u32::try_from(*p) {
                        Err(_) => Err(ErrorCode::UnknownTopicOrPartition),
                        Ok(partition) => ctx
                            .backends
                            .replicas
                            .abort_hanging_transaction(
                                topic.name.0.as_str(),
                                partition,
                                marker.producer_id.0,
                                Some(marker.producer_epoch),
                                marker.coordinator_epoch,
                            )
                            .await
                            .map_err(|e| e.code()),
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(outcome.err().map_or(0, code)),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
