//! TransactionService: protobuf in, domain types to the transaction coordinator,
//! protobuf out. The one place transaction requests from gRPC are converted and
//! `CoordinatorError` becomes a gRPC status. Rill's own clients speak KIP-890: every
//! EndTxn bumps the producer epoch.

use std::sync::Arc;
use std::time::Duration;

use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::{ProducerIdAndEpoch, TxnDescription};
use rill_common::ErrorCode;
use rill_metadata::access::Gate;
use rill_metadata::OffsetCommit;
use rill_proto::v1 as pb;
use rill_proto::v1::transaction_service_server::TransactionService;
use rill_proto::ListenerPorts;
use tonic::{Request, Response, Status};

use super::{EndTxnVersion, TxnCoordinator};
use crate::error::CoordinatorError;

pub struct TransactionServiceImpl {
    coordinator: Arc<TxnCoordinator>,
    client_listeners: Arc<ListenerPorts>,
    /// What each caller may do (ACLs: WRITE on its transactional id, and on what it
    /// writes to).
    gate: Gate,
}

impl TransactionServiceImpl {
    pub fn new(
        coordinator: Arc<TxnCoordinator>,
        client_listeners: Arc<ListenerPorts>,
        gate: Gate,
    ) -> Self {
        Self {
            coordinator,
            client_listeners,
            gate,
        }
    }
}

fn status(e: CoordinatorError) -> Status {
    rill_proto::error_status(e.code(), e.message())
}

fn producer(p: Option<pb::TxnProducer>) -> Result<ProducerIdAndEpoch, Status> {
    let p = p.ok_or_else(|| {
        rill_proto::error_status(ErrorCode::InvalidRequest, "the producer id is missing")
    })?;
    let epoch = i16::try_from(p.producer_epoch).map_err(|_| {
        rill_proto::error_status(ErrorCode::InvalidRequest, "a producer epoch is an int16")
    })?;
    Ok(ProducerIdAndEpoch {
        producer_id: p.producer_id,
        epoch,
    })
}

fn producer_to_pb(p: ProducerIdAndEpoch) -> pb::TxnProducer {
    pb::TxnProducer {
        producer_id: p.producer_id,
        producer_epoch: p.epoch.into(),
    }
}

fn description_to_pb(d: TxnDescription) -> pb::TransactionDescription {
    pb::TransactionDescription {
        transactional_id: d.transactional_id,
        producer_id: d.producer.producer_id,
        producer_epoch: d.producer.epoch.into(),
        state: d.state.as_str().to_string(),
        timeout_ms: d.timeout_ms,
        partitions: d
            .partitions
            .into_iter()
            .map(|(topic, partition)| pb::TopicPartitionRef { topic, partition })
            .collect(),
        started_ms: d.started_ms,
        groups: d.offsets.into_keys().collect(),
    }
}

impl TransactionServiceImpl {
    /// WRITE on the transactional id: what running its transactions takes.
    fn require_id<T>(&self, request: &Request<T>, transactional_id: &str) -> Result<(), Status> {
        self.gate.require(
            request,
            Operation::Write,
            ResourceType::TransactionalId,
            transactional_id,
        )
    }
}

#[tonic::async_trait]
impl TransactionService for TransactionServiceImpl {
    async fn find_coordinator(
        &self,
        request: Request<pb::FindTxnCoordinatorRequest>,
    ) -> Result<Response<pb::FindCoordinatorResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::TransactionalId,
            &request.get_ref().transactional_id,
        )?;
        let listener = self.client_listeners.listener_of(&request);
        let (node_id, addr) = self.coordinator.find(listener).map_err(status)?;
        Ok(Response::new(pb::FindCoordinatorResponse { node_id, addr }))
    }

    async fn init_producer_id(
        &self,
        request: Request<pb::InitTxnProducerIdRequest>,
    ) -> Result<Response<pb::TxnProducer>, Status> {
        self.require_id(&request, &request.get_ref().transactional_id)?;
        let r = request.into_inner();
        let current = r.current.map(|p| producer(Some(p))).transpose()?;
        let p = self
            .coordinator
            .init_producer_id(
                &r.transactional_id,
                Duration::from_millis(r.transaction_timeout_ms.into()),
                current,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(producer_to_pb(p)))
    }

    async fn add_partitions(
        &self,
        request: Request<pb::AddPartitionsToTxnRequest>,
    ) -> Result<Response<pb::AddPartitionsToTxnResponse>, Status> {
        self.require_id(&request, &request.get_ref().transactional_id)?;
        for p in &request.get_ref().partitions {
            self.gate
                .require(&request, Operation::Write, ResourceType::Topic, &p.topic)?;
        }
        let r = request.into_inner();
        let partitions: Vec<(String, u32)> = r
            .partitions
            .into_iter()
            .map(|p| (p.topic, p.partition))
            .collect();
        self.coordinator
            .add_partitions(&r.transactional_id, producer(r.producer)?, &partitions)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddPartitionsToTxnResponse {}))
    }

    async fn add_offsets(
        &self,
        request: Request<pb::AddOffsetsToTxnRequest>,
    ) -> Result<Response<pb::AddOffsetsToTxnResponse>, Status> {
        self.require_id(&request, &request.get_ref().transactional_id)?;
        self.gate.require(
            &request,
            Operation::Read,
            ResourceType::Group,
            &request.get_ref().group_id,
        )?;
        let r = request.into_inner();
        self.coordinator
            .add_offsets(&r.transactional_id, producer(r.producer)?, &r.group_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddOffsetsToTxnResponse {}))
    }

    async fn txn_offset_commit(
        &self,
        request: Request<pb::TxnOffsetCommitRequest>,
    ) -> Result<Response<pb::TxnOffsetCommitResponse>, Status> {
        self.require_id(&request, &request.get_ref().transactional_id)?;
        let sent = request.get_ref();
        self.gate.require_offset_commit(
            &request,
            &sent.group_id,
            sent.offsets.iter().map(|o| o.topic.as_str()),
        )?;
        let r = request.into_inner();
        let offsets = r.offsets.into_iter().map(OffsetCommit::from).collect();
        let instance_id = r.group_instance_id.as_deref().filter(|i| !i.is_empty());
        self.coordinator
            .commit_offsets(
                &r.transactional_id,
                producer(r.producer)?,
                &r.group_id,
                &r.member_id,
                instance_id,
                r.generation,
                offsets,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::TxnOffsetCommitResponse {}))
    }

    async fn end_txn(
        &self,
        request: Request<pb::EndTxnRequest>,
    ) -> Result<Response<pb::TxnProducer>, Status> {
        self.require_id(&request, &request.get_ref().transactional_id)?;
        let r = request.into_inner();
        let next = self
            .coordinator
            .end(
                &r.transactional_id,
                producer(r.producer)?,
                r.commit,
                EndTxnVersion::BumpEpoch,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(producer_to_pb(next)))
    }

    async fn describe_transactions(
        &self,
        request: Request<pb::DescribeTransactionsRequest>,
    ) -> Result<Response<pb::DescribeTransactionsResponse>, Status> {
        for id in &request.get_ref().transactional_ids {
            self.gate.require(
                &request,
                Operation::Describe,
                ResourceType::TransactionalId,
                id,
            )?;
        }
        let r = request.into_inner();
        let found = self
            .coordinator
            .describe(&r.transactional_ids)
            .await
            .map_err(status)?;
        let mut transactions = Vec::new();
        for (id, description) in found {
            match description {
                Some(d) => transactions.push(description_to_pb(d)),
                None if r.transactional_ids.len() == 1 => {
                    return Err(rill_proto::error_status(
                        ErrorCode::TransactionalIdNotFound,
                        &format!("no transactional id '{id}'"),
                    ))
                }
                None => {}
            }
        }
        Ok(Response::new(pb::DescribeTransactionsResponse {
            transactions,
        }))
    }

    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let all = self.coordinator.list().await.map_err(status)?;
        Ok(Response::new(pb::ListTransactionsResponse {
            transactions: all
                .into_iter()
                .filter(|t| {
                    self.gate.permits(
                        &request,
                        Operation::Describe,
                        ResourceType::TransactionalId,
                        &t.transactional_id,
                    )
                })
                .map(description_to_pb)
                .collect(),
        }))
    }
}
