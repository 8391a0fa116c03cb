//! AdminService's calls that change where things live: reassignments, rebalance and
//! decommission, controller voters; translated to controller requests and back.

use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::controller::reassignment::{self, ReassignmentRequest};
use rill_metadata::grpc::status;
use rill_metadata::{ControllerReply, ControllerRequest};
use rill_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::admin_service::{AdminServiceImpl, CLUSTER};

fn to_request(r: pb::PartitionReassignment) -> ReassignmentRequest {
    ReassignmentRequest {
        topic: r.topic,
        partition: r.partition,
        target: (!r.cancel).then_some(r.replicas),
    }
}

fn to_proto(r: ReassignmentRequest) -> pb::PartitionReassignment {
    pb::PartitionReassignment {
        topic: r.topic,
        partition: r.partition,
        cancel: r.target.is_none(),
        replicas: r.target.unwrap_or_default(),
    }
}

/// The plan and per-item results of a controller's reassignment reply.
fn plan_response(reply: ControllerReply) -> Result<pb::ReassignmentPlanResponse, Status> {
    let ControllerReply::Reassignments { planned, results } = reply else {
        return Err(rill_proto::error_status(
            ErrorCode::UnknownServerError,
            "the controller answered a reassignment with something else",
        ));
    };
    let results = planned
        .iter()
        .zip(results)
        .map(|(r, result)| {
            let (error_code, error_message) = match result {
                Ok(()) => (String::new(), String::new()),
                Err((code, message)) => (code.to_string(), message),
            };
            pb::ItemResult {
                name: format!("{}-{}", r.topic, r.partition),
                error_code,
                error_message,
            }
        })
        .collect();
    Ok(pb::ReassignmentPlanResponse {
        plan: planned.into_iter().map(to_proto).collect(),
        results,
    })
}

impl AdminServiceImpl {
    async fn submit_reassignment(
        &self,
        request: ControllerRequest,
    ) -> Result<pb::ReassignmentPlanResponse, Status> {
        let reply = self
            .metadata
            .submit(request)
            .await
            .map_err(|e| status(&e))?;
        plan_response(reply)
    }

    pub(super) async fn alter_reassignments_call(
        &self,
        request: Request<pb::AlterReassignmentsRequest>,
    ) -> Result<Response<pb::AlterReassignmentsResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let requests = request
            .into_inner()
            .reassignments
            .into_iter()
            .map(to_request)
            .collect();
        let response = self
            .submit_reassignment(ControllerRequest::AlterReassignments(requests))
            .await?;
        Ok(Response::new(pb::AlterReassignmentsResponse {
            results: response.results,
        }))
    }

    pub(super) async fn list_reassignments_call(
        &self,
        request: Request<pb::ListReassignmentsRequest>,
    ) -> Result<Response<pb::ListReassignmentsResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Cluster,
            CLUSTER,
        )?;
        let topics = request.into_inner().topics;
        let state = self.metadata.state();
        let reassignments = reassignment::in_progress(&state)
            .into_iter()
            .filter(|(topic, _)| topics.is_empty() || topics.iter().any(|t| t == topic))
            .map(|(topic, p)| pb::ReassignmentStatus {
                topic: topic.to_string(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
                isr: p.isr.clone(),
                leader: p.leader,
            })
            .collect();
        Ok(Response::new(pb::ListReassignmentsResponse {
            reassignments,
        }))
    }

    pub(super) async fn rebalance_call(
        &self,
        request: Request<pb::RebalanceRequest>,
    ) -> Result<Response<pb::ReassignmentPlanResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let execute = request.into_inner().execute;
        self.submit_reassignment(ControllerRequest::Rebalance { execute })
            .await
            .map(Response::new)
    }

    pub(super) async fn change_voters_call(
        &self,
        request: Request<pb::ChangeVotersRequest>,
    ) -> Result<Response<pb::ControllerInfo>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let r = request.into_inner();
        let change = if r.remove {
            ControllerRequest::RemoveVoter { node_id: r.node_id }
        } else {
            ControllerRequest::AddVoter { node_id: r.node_id }
        };
        self.metadata.submit(change).await.map_err(|e| status(&e))?;
        Ok(Response::new(self.controller_quorum()))
    }

    pub(super) async fn decommission_broker_call(
        &self,
        request: Request<pb::DecommissionBrokerRequest>,
    ) -> Result<Response<pb::ReassignmentPlanResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let r = request.into_inner();
        self.submit_reassignment(ControllerRequest::DecommissionBroker {
            broker_id: r.broker_id,
            cancel: r.cancel,
        })
        .await
        .map(Response::new)
    }
}
