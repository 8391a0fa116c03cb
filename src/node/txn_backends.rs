//! What the transaction coordinator needs from this node: producer ids (the allocator
//! both protocols' idempotent producers use) and marker writes, to the local replica
//! manager when this broker leads the partition, else to the leader's BrokerService.

use std::sync::Arc;
use std::time::Duration;

use rill_broker::grpc::ProducerIdSource;
use rill_broker::ReplicaManager;
use rill_common::group::TopicPartition;
use rill_common::transaction::TxnMarker;
use rill_common::ErrorCode;
use rill_coordinator::service::TxnBackends;
use rill_metadata::{ChannelPool, MetadataNode};
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;

/// How long one marker write may take before it is retried.
const MARKER_TIMEOUT: Duration = Duration::from_secs(10);

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
