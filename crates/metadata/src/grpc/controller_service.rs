use std::sync::Arc;

use rill_proto::v1::controller_service_server::ControllerService;
use rill_proto::v1::{
    AlterPartitionRequest, AlterPartitionResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    ForwardRequest, ForwardResponse, RegisterBrokerRequest, RegisterBrokerResponse,
};
use tonic::{Request, Response, Status};

use super::status;
use crate::types::{ControllerReply, ControllerRequest};
use crate::MetadataNode;

/// Broker-to-controller calls. Any node serves them: `submit` forwards to the leader.
pub struct ControllerServiceImpl {
    node: Arc<MetadataNode>,
}

impl ControllerServiceImpl {
    pub fn new(node: Arc<MetadataNode>) -> Self {
        Self { node }
    }
}

fn unexpected(reply: ControllerReply) -> Status {
    Status::internal(format!("unexpected controller reply {reply:?}"))
}

#[tonic::async_trait]
impl ControllerService for ControllerServiceImpl {
    async fn register_broker(
        &self,
        request: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        let r = request.into_inner();
        let req = ControllerRequest::RegisterBroker {
            broker_id: r.broker_id,
            addr: r.addr,
            listeners: crate::model::AdvertisedListeners {
                kafka: r.listeners.into_iter().collect(),
                grpc: r.grpc_listeners.into_iter().collect(),
            },
            store: crate::model::StoreInfo {
                store_id: r.store_id,
                clean_shutdown: r.clean_shutdown,
                acks_before_fsync: r.acks_before_fsync,
            },
        };
        match self.node.submit(req).await.map_err(|e| status(&e))? {
            ControllerReply::BrokerRegistered { broker_epoch } => {
                Ok(Response::new(RegisterBrokerResponse { broker_epoch }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn broker_heartbeat(
        &self,
        request: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        let r = request.into_inner();
        let req = ControllerRequest::BrokerHeartbeat {
            broker_id: r.broker_id,
            broker_epoch: r.broker_epoch,
            storage_failing: r.storage_failing,
        };
        match self.node.submit(req).await.map_err(|e| status(&e))? {
            ControllerReply::Heartbeat { fenced } => {
                Ok(Response::new(BrokerHeartbeatResponse { fenced }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn alter_partition(
        &self,
        request: Request<AlterPartitionRequest>,
    ) -> Result<Response<AlterPartitionResponse>, Status> {
        let r = request.into_inner();
        let req =
            ControllerRequest::AlterPartitions(vec![crate::controller::isr::AlterPartition {
                broker_id: r.broker_id,
                broker_epoch: r.broker_epoch,
                topic: r.topic,
                partition: r.partition,
                leader_epoch: r.leader_epoch,
                partition_epoch: r.partition_epoch,
                isr: r.isr,
            }]);
        match self.node.submit(req).await.map_err(|e| status(&e))? {
            ControllerReply::PartitionsAltered { results } => match results.into_iter().next() {
                Some(Ok(partition_epoch)) => {
                    Ok(Response::new(AlterPartitionResponse { partition_epoch }))
                }
                Some(Err((code, message))) => {
                    Err(status(&crate::MetadataError::Rejected { code, message }))
                }
                None => Err(Status::internal("no answer for the ISR change")),
            },
            other => Err(unexpected(other)),
        }
    }

    /// Executes a request forwarded by another node, only if this node leads; the
    /// result (or the error, with a leader hint) goes back serde-encoded.
    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        let req: ControllerRequest =
            serde_json::from_slice(&request.into_inner().data).map_err(|e| {
                Status::invalid_argument(format!("undecodable controller request: {e}"))
            })?;
        let result = self.node.execute_as_leader(req).await;
        let data = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ForwardResponse { data: data.into() }))
    }
}
