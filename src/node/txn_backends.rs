//! The node's glue around transactions: what the transaction coordinator needs from
//! this node (producer ids from the allocator both protocols' idempotent producers use;
//! marker writes, to the local replica manager when this broker leads the partition,
//! else to the leader's BrokerService), and how this node's partition leaders reach the
//! coordinator to verify a transaction's first write.

use std::sync::Arc;
use std::time::Duration;

use rill_broker::grpc::ProducerIdSource;
use rill_broker::txn_verifier::TxnVerifier;
use rill_broker::ReplicaManager;
use rill_common::group::TopicPartition;
use rill_common::transaction::{ProducerIdAndEpoch, TxnMarker};
use rill_common::ErrorCode;
use rill_coordinator::service::{TxnBackends, TxnCoordinator};
use rill_metadata::{ChannelPool, MetadataNode};
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;

/// How long one marker write may take before it is retried.
const MARKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a leader waits for the coordinator's verdict on a first write.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct NodeTxnBackends {
    pub metadata: Arc<MetadataNode>,
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: Arc<dyn ProducerIdSource>,
    pub channels: ChannelPool,
}

#[tonic::async_trait]
impl TxnBackends for NodeTxnBackends {
    async fn next_producer_id(&self) -> Result<i64, ErrorCode> {
        self.producer_ids
            .next_producer_id()
            .await
            .map_err(|e| match e.code() {
                ErrorCode::NotLeaderOrFollower => ErrorCode::CoordinatorNotAvailable,
                other => other,
            })
    }

    async fn write_marker(
        &self,
        (topic, partition): &TopicPartition,
        marker: TxnMarker,
    ) -> Result<(), ErrorCode> {
        let state = self.metadata.state();
        let Some(p) = state.partition(topic, *partition) else {
            return Err(ErrorCode::UnknownTopicOrPartition);
        };
        let leader = p.leader.ok_or(ErrorCode::LeaderNotAvailable)?;
        if leader == self.replicas.broker_id() {
            return self
                .replicas
                .write_marker(topic, *partition, marker, MARKER_TIMEOUT)
                .await
                .map_err(|e| e.code());
        }
        let addr = state
            .brokers
            .get(&leader)
            .map(|b| b.addr.clone())
            .ok_or(ErrorCode::LeaderNotAvailable)?;
        let channel = self
            .channels
            .get(&addr)
            .map_err(|_| ErrorCode::LeaderNotAvailable)?;
        let request = pb::WriteTxnMarkerRequest {
            topic: topic.clone(),
            partition: *partition,
            producer_id: marker.producer_id,
            producer_epoch: i32::from(marker.producer_epoch),
            commit: marker.commit,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut client = BrokerServiceClient::new(channel);
        let call = client.write_txn_marker(request);
        match tokio::time::timeout(MARKER_TIMEOUT + Duration::from_secs(1), call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => {
                Err(rill_proto::status_error_code(&status)
                    .unwrap_or(ErrorCode::NotLeaderOrFollower))
            }
            Err(_) => Err(ErrorCode::RequestTimedOut),
        }
    }
}

/// The transaction coordinator of this node verifies a first write (NOT_COORDINATOR
/// when this node is not the active controller): what `BrokerService.VerifyTxnPartition`
/// answers other leaders with.
pub struct LocalTxnVerifier(pub Arc<TxnCoordinator>);

#[tonic::async_trait]
impl TxnVerifier for LocalTxnVerifier {
    async fn verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        self.0
            .verify_partition(transactional_id, producer, partition)
            .await
            .map_err(|e| e.code())
    }
}

/// This node's partition leaders verify first writes with the coordinator: here when
/// this node is the active controller, else over gRPC on the active controller.
pub struct NodeTxnVerifier {
    pub local: LocalTxnVerifier,
    pub metadata: Arc<MetadataNode>,
    pub channels: ChannelPool,
}

#[tonic::async_trait]
impl TxnVerifier for NodeTxnVerifier {
    async fn verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        if self.metadata.controller_info().is_leader {
            return self
                .local
                .verify(transactional_id, producer, partition)
                .await;
        }
        let (_, addr) = self
            .metadata
            .known_leader()
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let channel = self
            .channels
            .get(&addr)
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let mut client = BrokerServiceClient::new(channel);
        let request = pb::VerifyTxnPartitionRequest {
            transactional_id: transactional_id.to_string(),
            producer_id: producer.producer_id,
            producer_epoch: i32::from(producer.epoch),
            topic: partition.0.clone(),
            partition: partition.1,
        };
        match tokio::time::timeout(VERIFY_TIMEOUT, client.verify_txn_partition(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(rill_proto::status_error_code(&status)
                .unwrap_or(ErrorCode::CoordinatorNotAvailable)),
            Err(_) => Err(ErrorCode::RequestTimedOut),
        }
    }
}
