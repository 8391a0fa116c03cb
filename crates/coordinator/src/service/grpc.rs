//! GroupService: protobuf in, domain types to the coordinator, protobuf out. The one
//! place group requests are converted and `CoordinatorError` becomes a gRPC status.

use std::sync::Arc;
use std::time::Duration;

use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::access::Gate;
use rill_metadata::OffsetCommit;
use rill_proto::group::{
    assignment_from_pb, assignment_to_pb, subscription_from_pb, subscription_to_pb,
};
use rill_proto::v1 as pb;
use rill_proto::v1::group_service_server::GroupService;
use rill_proto::ListenerPorts;
use tonic::{Request, Response, Status};

use super::GroupCoordinator;
use crate::error::CoordinatorError;
use crate::types::{JoinRequest, Protocol, SyncRequest};

pub struct GroupServiceImpl {
    coordinator: Arc<GroupCoordinator>,
    client_listeners: Arc<ListenerPorts>,
    /// What each caller may do (ACLs: READ on a group to be in it or commit for it).
    gate: Gate,
}

impl GroupServiceImpl {
    pub fn new(
        coordinator: Arc<GroupCoordinator>,
        client_listeners: Arc<ListenerPorts>,
        gate: Gate,
    ) -> Self {
        Self {
            coordinator,
            client_listeners,
            gate,
        }
    }

    /// READ on the group: what being in it or committing for it takes.
    fn require_group<T>(&self, request: &Request<T>, group_id: &str) -> Result<(), Status> {
        self.gate
            .require(request, Operation::Read, ResourceType::Group, group_id)
    }
}

/// A static member's `group.instance.id`; protobuf's empty string means none.
fn instance_id(id: Option<&str>) -> Option<&str> {
    id.filter(|i| !i.is_empty())
}

fn status(e: CoordinatorError) -> Status {
    rill_proto::error_status(e.code(), e.message())
}

#[tonic::async_trait]
impl GroupService for GroupServiceImpl {
    async fn find_coordinator(
        &self,
        request: Request<pb::FindCoordinatorRequest>,
    ) -> Result<Response<pb::FindCoordinatorResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Group,
            &request.get_ref().group_id,
        )?;
        let listener = self.client_listeners.listener_of(&request);
        let (node_id, addr) = self.coordinator.find(listener).map_err(status)?;
        Ok(Response::new(pb::FindCoordinatorResponse { node_id, addr }))
    }

    async fn join_group(
        &self,
        request: Request<pb::JoinGroupRequest>,
    ) -> Result<Response<pb::JoinGroupResponse>, Status> {
        self.require_group(&request, &request.get_ref().group_id)?;
        let r = request.into_inner();
        let join = JoinRequest {
            require_known_member_id: false,
            member_id: r.member_id,
            new_member_id: String::new(),
            group_instance_id: instance_id(r.group_instance_id.as_deref()).map(str::to_string),
            client_id: r.client_id,
            session_timeout: Duration::from_millis(r.session_timeout_ms.into()),
            rebalance_timeout: Duration::from_millis(r.rebalance_timeout_ms.into()),
            protocol_type: r.protocol_type,
            protocols: r
                .protocols
                .into_iter()
                .map(|p| Protocol {
                    metadata: None,
                    name: p.name,
                    subscription: subscription_from_pb(p.subscription),
                })
                .collect(),
        };
        let joined = self
            .coordinator
            .join(&r.group_id, join)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::JoinGroupResponse {
            generation: joined.generation,
            protocol: joined.protocol,
            leader: joined.leader,
            member_id: joined.member_id,
            members: joined
                .members
                .into_iter()
                .map(|m| pb::JoinedGroupMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    subscription: Some(subscription_to_pb(&m.subscription)),
                })
                .collect(),
        }))
    }

    async fn sync_group(
        &self,
        request: Request<pb::SyncGroupRequest>,
    ) -> Result<Response<pb::SyncGroupResponse>, Status> {
        self.require_group(&request, &request.get_ref().group_id)?;
        let r = request.into_inner();
        let sync = SyncRequest {
            member_id: r.member_id,
            group_instance_id: instance_id(r.group_instance_id.as_deref()).map(str::to_string),
            generation: r.generation,
            assignments: r
                .assignments
                .into_iter()
                .map(|a| (a.member_id, assignment_from_pb(a.topics)))
                .collect(),
            assignment_bytes: Default::default(),
        };
        let assignment = self
            .coordinator
            .sync(&r.group_id, sync)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SyncGroupResponse {
            assignment: assignment_to_pb(&assignment.partitions),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.require_group(&request, &request.get_ref().group_id)?;
        let r = request.into_inner();
        self.coordinator
            .heartbeat_wait(
                &r.group_id,
                &r.member_id,
                instance_id(r.group_instance_id.as_deref()),
                r.generation,
                Duration::from_millis(u64::from(r.wait_ms)),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn leave_group(
        &self,
        request: Request<pb::LeaveGroupRequest>,
    ) -> Result<Response<pb::LeaveGroupResponse>, Status> {
        self.require_group(&request, &request.get_ref().group_id)?;
        let r = request.into_inner();
        self.coordinator
            .leave(
                &r.group_id,
                &r.member_id,
                instance_id(r.group_instance_id.as_deref()),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LeaveGroupResponse {}))
    }

    async fn offset_commit(
        &self,
        request: Request<pb::OffsetCommitRequest>,
    ) -> Result<Response<pb::OffsetCommitResponse>, Status> {
        let sent = request.get_ref();
        self.gate.require_offset_commit(
            &request,
            &sent.group_id,
            sent.offsets.iter().map(|o| o.topic.as_str()),
        )?;
        let r = request.into_inner();
        let offsets = r.offsets.into_iter().map(OffsetCommit::from).collect();
        self.coordinator
            .commit(
                &r.group_id,
                &r.member_id,
                instance_id(r.group_instance_id.as_deref()),
                r.generation,
                offsets,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::OffsetCommitResponse {}))
    }

    async fn offset_fetch(
        &self,
        request: Request<pb::OffsetFetchRequest>,
    ) -> Result<Response<pb::OffsetFetchResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Group,
            &request.get_ref().group_id,
        )?;
        let r = request.get_ref().clone();
        let partitions: Vec<(String, u32)> = r
            .partitions
            .into_iter()
            .map(|p| (p.topic, p.partition))
            .collect();
        if r.require_stable {
            let unstable = self.coordinator.unstable_offsets(&r.group_id);
            let pending = unstable
                .iter()
                .find(|tp| partitions.is_empty() || partitions.contains(tp));
            if let Some((topic, partition)) = pending {
                return Err(status(CoordinatorError::new(
                    ErrorCode::UnstableOffsetCommit,
                    format!("a transaction is committing the offset of {topic}-{partition}"),
                )));
            }
        }
        let offsets = self
            .coordinator
            .fetch_offsets(&r.group_id, &partitions)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::OffsetFetchResponse {
            offsets: offsets
                .into_iter()
                .filter(|o| {
                    self.gate
                        .permits(&request, Operation::Describe, ResourceType::Topic, &o.topic)
                })
                .map(pb::PartitionOffset::from)
                .collect(),
        }))
    }
}
