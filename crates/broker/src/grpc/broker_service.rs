use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rill_common::acl::{Operation, ResourceType};
use rill_common::transaction::{IsolationLevel, ProducerIdAndEpoch, TxnMarker};
use rill_metadata::access::Gate;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_server::BrokerService;
use rill_proto::NodeAuth;
use tonic::{Request, Response, Status};

use super::status;
use crate::divergence::Diverging;
use crate::replica_manager::{
    request_wait, Acks, FetchLimits, FetchPartitionRequest, Produced, MAX_REQUEST_WAIT,
};
use crate::txn_verifier::TxnVerifier;
use crate::{BrokerError, ReplicaManager};

/// A produce that names no timeout waits this long (the gRPC default).
const DEFAULT_PRODUCE_TIMEOUT: Duration = MAX_REQUEST_WAIT;

/// Where producer ids come from (the node hands them out of blocks the controller
/// allocates; the broker never talks to the metadata quorum itself).
#[tonic::async_trait]
pub trait ProducerIdSource: Send + Sync {
    async fn next_producer_id(&self) -> Result<i64, BrokerError>;
}

pub struct BrokerServiceImpl {
    replicas: Arc<ReplicaManager>,
    producer_ids: Arc<dyn ProducerIdSource>,
    /// The transaction coordinator on this node (VerifyTxnPartition from other leaders).
    local_txn_verifier: Arc<dyn TxnVerifier>,
    /// Who may make the node-to-node calls: follower fetches, markers, verifications.
    node_auth: NodeAuth,
    /// What each caller may do (ACLs).
    gate: Gate,
}

impl BrokerServiceImpl {
    pub fn new(
        replicas: Arc<ReplicaManager>,
        producer_ids: Arc<dyn ProducerIdSource>,
        local_txn_verifier: Arc<dyn TxnVerifier>,
        node_auth: NodeAuth,
        gate: Gate,
    ) -> Self {
        Self {
            replicas,
            producer_ids,
            local_txn_verifier,
            node_auth,
            gate,
        }
    }
}

#[tonic::async_trait]
impl BrokerService for BrokerServiceImpl {
    async fn init_producer_id(
        &self,
        request: Request<pb::InitProducerIdRequest>,
    ) -> Result<Response<pb::InitProducerIdResponse>, Status> {
        self.gate.require_idempotent_write(&request)?;
        let producer_id = self
            .producer_ids
            .next_producer_id()
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::InitProducerIdResponse {
            producer_id,
            producer_epoch: 0,
        }))
    }

    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        let topic = &request.get_ref().topic;
        self.gate
            .require(&request, Operation::Write, ResourceType::Topic, topic)?;
        if let Some(id) = &request.get_ref().transactional_id {
            self.gate.require(
                &request,
                Operation::Write,
                ResourceType::TransactionalId,
                id,
            )?;
        }
        let r = request.into_inner();
        let acks = Acks::from_wire(r.acks).map_err(|e| status(&e))?;
        let timeout = match r.timeout_ms {
            0 => DEFAULT_PRODUCE_TIMEOUT,
            ms => request_wait(i64::from(ms)),
        };
        let Produced {
            base_offset,
            log_start_offset,
        } = self
            .replicas
            .produce(
                &r.topic,
                r.partition,
                acks,
                r.records,
                timeout,
                r.transactional_id.as_deref(),
            )
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::ProduceResponse {
            base_offset,
            log_start_offset,
        }))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        // A follower's fetch moves the ISR and the high watermark: nodes only. A
        // consumer's needs READ on each topic.
        let follower = request.get_ref().replica_id >= 0;
        if follower {
            self.node_auth.check(&request)?;
        }
        let (readable, refused): (Vec<_>, Vec<_>) =
            request.get_ref().partitions.iter().partition(|p| {
                follower
                    || self
                        .gate
                        .allowed(&request, Operation::Read, ResourceType::Topic, &p.topic)
            });
        let refused: Vec<pb::FetchPartitionResponse> = refused
            .into_iter()
            .map(|p| pb::FetchPartitionResponse {
                topic: p.topic.clone(),
                partition: p.partition,
                error_code: ResourceType::Topic.authorization_failed().to_string(),
                error_message: format!("may not read topic {:?}", p.topic),
                ..Default::default()
            })
            .collect();
        let isolation_level = isolation(request.get_ref().isolation_level());
        let requests: Vec<FetchPartitionRequest> = readable
            .into_iter()
            .map(|p| FetchPartitionRequest {
                topic: p.topic.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: FetchLimits::partition_max_bytes(i64::from(p.partition_max_bytes)),
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
                isolation: isolation_level,
            })
            .collect();
        let r = request.into_inner();
        let limits = FetchLimits::new(
            i64::from(r.max_wait_ms),
            i64::from(r.min_bytes),
            i64::from(r.max_bytes),
        );
        let replica = u64::try_from(r.replica_id).ok();
        let results = self.replicas.fetch(replica, &requests, limits).await;
        let partitions = results
            .into_iter()
            .map(|result| match result.result {
                Ok(fetched) => {
                    let mut records =
                        BytesMut::with_capacity(fetched.batches.iter().map(Bytes::len).sum());
                    for b in &fetched.batches {
                        records.extend_from_slice(b);
                    }
                    let offsets = fetched.offsets;
                    pb::FetchPartitionResponse {
                        topic: result.topic,
                        partition: result.partition,
                        high_watermark: offsets.high_watermark,
                        last_stable_offset: offsets.last_stable_offset,
                        log_start_offset: offsets.log_start,
                        log_end_offset: offsets.log_end,
                        records: records.freeze(),
                        aborted_transactions: fetched
                            .aborted
                            .iter()
                            .map(|a| pb::AbortedTransaction {
                                producer_id: a.producer_id,
                                first_offset: a.first_offset,
                            })
                            .collect(),
                        diverging_epoch: fetched.diverging.map(|Diverging(end)| {
                            pb::DivergingEpoch {
                                epoch: end.map(|(e, _)| e),
                                end_offset: end.map(|(_, o)| o),
                            }
                        }),
                        ..Default::default()
                    }
                }
                Err(e) => pb::FetchPartitionResponse {
                    topic: result.topic,
                    partition: result.partition,
                    error_code: e.code().to_string(),
                    error_message: e.message(),
                    ..Default::default()
                },
            })
            .chain(refused)
            .collect();
        Ok(Response::new(pb::FetchResponse { partitions }))
    }

    async fn offset_for_leader_epoch(
        &self,
        request: Request<pb::OffsetForLeaderEpochRequest>,
    ) -> Result<Response<pb::OffsetForLeaderEpochResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        let found = self
            .replicas
            .offset_for_leader_epoch(
                &r.topic,
                r.partition,
                r.leader_epoch,
                r.current_leader_epoch,
            )
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::OffsetForLeaderEpochResponse {
            leader_epoch: found.map(|(e, _)| e),
            end_offset: found.map(|(_, o)| o),
        }))
    }

    async fn describe_replica(
        &self,
        request: Request<pb::DescribeReplicaRequest>,
    ) -> Result<Response<pb::DescribeReplicaResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        let d = self
            .replicas
            .describe_replica(&r.topic, r.partition, r.checksum_from, r.checksum_to)
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::DescribeReplicaResponse {
            log_start_offset: d.offsets.log_start,
            log_end_offset: d.offsets.log_end,
            high_watermark: d.offsets.high_watermark,
            leader_epoch: d.leader_epoch,
            is_leader: d.is_leader,
            checksum: d.checksum,
            checked_up_to: d.checked_up_to,
        }))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        let (found, offsets) = self
            .replicas
            .list_offsets(
                &r.topic,
                r.partition,
                r.timestamp,
                isolation(r.isolation_level()),
            )
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::ListOffsetsResponse {
            offset: found.map(|(o, _)| o),
            timestamp: found.map_or(-1, |(_, t)| t),
            log_start_offset: offsets.log_start,
            high_watermark: offsets.high_watermark,
            log_end_offset: offsets.log_end,
            last_stable_offset: offsets.last_stable_offset,
        }))
    }

    async fn write_txn_marker(
        &self,
        request: Request<pb::WriteTxnMarkerRequest>,
    ) -> Result<Response<pb::WriteTxnMarkerResponse>, Status> {
        self.node_auth.check(&request)?;
        let r = request.into_inner();
        let producer_epoch = i16::try_from(r.producer_epoch).map_err(|_| {
            status(&BrokerError::InvalidRequest(format!(
                "producer epoch {} is out of range",
                r.producer_epoch
            )))
        })?;
        let marker = TxnMarker {
            producer_id: r.producer_id,
            producer_epoch,
            commit: r.commit,
            coordinator_epoch: r.coordinator_epoch,
        };
        self.replicas
            .write_marker(&r.topic, r.partition, marker, MARKER_TIMEOUT)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::WriteTxnMarkerResponse {}))
    }

    async fn describe_producers(
        &self,
        request: Request<pb::DescribeProducersRequest>,
    ) -> Result<Response<pb::DescribeProducersResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Read,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        let producers = self
            .replicas
            .describe_producers(&r.topic, r.partition)
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::DescribeProducersResponse {
            producers: producers
                .into_iter()
                .map(|d| pb::ProducerState {
                    producer_id: d.producer_id,
                    producer_epoch: d.epoch.into(),
                    last_sequence: d.last_sequence,
                    last_timestamp_ms: d.last_timestamp,
                    open_transaction_start: d.open_transaction_start,
                })
                .collect(),
        }))
    }

    async fn abort_transaction(
        &self,
        request: Request<pb::AbortTransactionRequest>,
    ) -> Result<Response<pb::AbortTransactionResponse>, Status> {
        // As Kafka's WriteTxnMarkers: an operator's act on the cluster.
        self.gate.require(
            &request,
            Operation::ClusterAction,
            ResourceType::Cluster,
            ResourceType::CLUSTER_NAME,
        )?;
        let r = request.into_inner();
        self.replicas
            .abort_hanging_transaction(&r.topic, r.partition, r.producer_id, None, -1)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::AbortTransactionResponse {}))
    }

    async fn verify_txn_partition(
        &self,
        request: Request<pb::VerifyTxnPartitionRequest>,
    ) -> Result<Response<pb::VerifyTxnPartitionResponse>, Status> {
        self.node_auth.check(&request)?;
        let r = request.into_inner();
        let epoch = i16::try_from(r.producer_epoch).map_err(|_| {
            status(&BrokerError::InvalidRequest(format!(
                "producer epoch {} is out of range",
                r.producer_epoch
            )))
        })?;
        let producer = ProducerIdAndEpoch {
            producer_id: r.producer_id,
            epoch,
        };
        self.local_txn_verifier
            .verify(&r.transactional_id, producer, &(r.topic, r.partition))
            .await
            .map_err(|code| rill_proto::error_status(code, "transaction verification refused"))?;
        Ok(Response::new(pb::VerifyTxnPartitionResponse {}))
    }
}

/// How long a marker write waits for the ISR at most.
const MARKER_TIMEOUT: Duration = Duration::from_secs(10);

fn isolation(level: pb::IsolationLevel) -> IsolationLevel {
    match level {
        pb::IsolationLevel::ReadCommitted => IsolationLevel::ReadCommitted,
        pb::IsolationLevel::ReadUncommitted => IsolationLevel::ReadUncommitted,
        pb::IsolationLevel::ReadLatest => IsolationLevel::ReadLatest,
    }
}
