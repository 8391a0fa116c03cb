//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup on the group coordinator the gRPC
//! GroupService uses: one group state machine for members of both protocols. Kafka
//! members' protocol metadata and assignments travel as the clients encoded them.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_coordinator::{CoordinatorError, JoinRequest, Protocol, SyncRequest};

use super::{code, Context};
use crate::consumer_protocol::{
    read_assignment, read_subscription, write_assignment, write_subscription,
};

/// The protocol type of Kafka's consumers (Connect and others are relayed, not read).
use rill_common::group::CONSUMER_PROTOCOL_TYPE as CONSUMER;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) async fn join_group(ctx: &Context<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id.0) {
        return JoinGroupResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    let client_id = if ctx.client_id.is_empty() {
        "kafka"
    } else {
        ctx.client_id
    };
    let consumer = request.protocol_type.as_str() == CONSUMER;
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        new_member_id: String::new(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        client_id: client_id.to_string(),
        session_timeout: millis(request.session_timeout_ms),
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout: millis(if ctx.version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        }),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                subscription: if consumer {
                    read_subscription(&p.metadata)
                } else {
                    Default::default()
                },
                metadata: Some(p.metadata.to_vec()),
            })
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    let failed = |e: ErrorCode, member_id: String| {
        JoinGroupResponse::default()
            .with_error_code(code(e))
            .with_generation_id(-1)
            // Before v7 the protocol name is not nullable.
            .with_protocol_name((ctx.version < 7).then(|| text("")))
            .with_member_id(text(member_id))
    };
    match ctx
        .backends
        .groups
        .join(request.group_id.0.as_str(), join)
        .await
    {
        Ok(joined) => {
            let members = joined
                .members
                .into_iter()
                .map(|m| {
                    let metadata = match m.metadata {
                        Some(bytes) => Bytes::from(bytes),
                        None => write_subscription(&m.subscription),
                    };
                    JoinGroupResponseMember::default()
                        .with_member_id(text(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(text))
                        .with_metadata(metadata)
                })
                .collect();
            JoinGroupResponse::default()
                .with_generation_id(joined.generation)
                .with_protocol_type(Some(request.protocol_type.clone()))
                .with_protocol_name(Some(text(joined.protocol)))
                .with_leader(text(joined.leader))
                .with_member_id(text(joined.member_id))
                .with_members(members)
        }
        Err(CoordinatorError::MemberIdRequired { member_id }) => {
            failed(ErrorCode::MemberIdRequired, member_id)
        }
        Err(e) => failed(e.code(), request.member_id.to_string()),
    }
}

pub(crate) async fn sync_group(ctx: &Context<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id.0) {
        return SyncGroupResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    let consumer = request
        .protocol_type
        .as_ref()
        .is_none_or(|t| t.as_str() == CONSUMER);
    let mut assignments = BTreeMap::new();
    let mut assignment_bytes = BTreeMap::new();
    for a in &request.assignments {
        if consumer {
            assignments.insert(a.member_id.to_string(), read_assignment(&a.assignment));
        }
        assignment_bytes.insert(a.member_id.to_string(), a.assignment.to_vec());
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        generation: request.generation_id,
        assignments,
        assignment_bytes,
    };
    let response = SyncGroupResponse::default()
        .with_protocol_type(request.protocol_type.clone())
        .with_protocol_name(request.protocol_name.clone());
    match ctx
        .backends
        .groups
        .sync(request.group_id.0.as_str(), sync)
        .await
    {
        Ok(assigned) => response.with_assignment(match assigned.bytes {
            Some(bytes) => Bytes::from(bytes),
            None => write_assignment(&assigned.partitions),
        }),
        Err(e) => response.with_error_code(code(e.code())),
    }
}

pub(crate) async fn heartbeat(ctx: &Context<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if !ctx.allowed(Operation::Read, ResourceType::Group, &request.group_id.0) {
        return HeartbeatResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    let result = ctx
        .backends
        .groups
        .heartbeat(
            request.group_id.0.as_str(),
            request.member_id.as_str(),
            request.group_instance_id.as_ref().map(|i| i.as_str()),
            request.generation_id,
        )
        .await;
    match result {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => HeartbeatResponse::default().with_error_code(code(e.code())),
    }
}

pub(crate) async fn leave_group(
    ctx: &Context<'_>,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.as_str();
    if !ctx.allowed(Operation::Read, ResourceType::Group, group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed));
    }
    if ctx.version < 3 {
        let result = ctx
            .backends
            .groups
            .leave(group_id, request.member_id.as_str(), None)
            .await;
        return match result {
            Ok(()) => LeaveGroupResponse::default(),
            Err(e) => LeaveGroupResponse::default().with_error_code(code(e.code())),
        };
    }
    // v3+: a batch of members (static members may leave by instance id alone).
    let mut members = Vec::new();
    for m in request.members {
        let result = ctx
            .backends
            .groups
            .leave(
                group_id,
                m.member_id.as_str(),
                m.group_instance_id.as_ref().map(|i| i.as_str()),
            )
            .await;
        members.push(
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(result.err().map_or(0, |e| code(e.code()))),
        );
    }
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) async fn describe_groups(
    ctx: &Context<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // DESCRIBE on each group; a refused one is answered with GROUP_AUTHORIZATION_FAILED.
    let (ids, refused): (Vec<String>, Vec<String>) = request
        .groups
        .iter()
        .map(|g| g.0.to_string())
        .partition(|id| ctx.allowed(Operation::Describe, ResourceType::Group, id));
    let refused = refused.into_iter().map(|id| {
        DescribedGroup::default()
            .with_group_id(GroupId(text(id)))
            .with_error_code(code(ErrorCode::GroupAuthorizationFailed))
    });
    let described = ctx.backends.groups.describe_groups(&ids).await;
    let groups: Vec<DescribedGroup> = match described {
        Ok(found) => found
            .into_iter()
            .map(|(id, group)| {
                let answer = DescribedGroup::default()
                    .with_group_id(GroupId(text(id.clone())))
                    .with_authorized_operations(i32::MIN);
                let Some(g) = group else {
                    // Kafka describes an unknown group as Dead, without an error.
                    return answer.with_group_state(text("Dead"));
                };
                let protocol = g.protocol.clone().unwrap_or_default();
                let members = g
                    .members
                    .iter()
                    .map(|m| {
                        let p = m.protocols.iter().find(|p| p.name == protocol);
                        let metadata = match p.and_then(|p| p.metadata.clone()) {
                            Some(bytes) => Bytes::from(bytes),
                            None => p
                                .map(|p| write_subscription(&p.subscription))
                                .unwrap_or_default(),
                        };
                        let assignment = match &m.assignment_bytes {
                            Some(bytes) => Bytes::from(bytes.clone()),
                            None => write_assignment(&m.assignment),
                        };
                        DescribedGroupMember::default()
                            .with_member_id(text(m.member_id.clone()))
                            .with_group_instance_id(m.group_instance_id.clone().map(text))
                            .with_client_id(text(m.client_id.clone()))
                            .with_member_metadata(metadata)
                            .with_member_assignment(assignment)
                    })
                    .collect();
                answer
                    .with_group_state(text(g.state.as_str()))
                    .with_protocol_type(text(g.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(text(protocol))
                    .with_members(members)
            })
            .collect(),
        Err(e) => {
            let error = code(e.code());
            ids.into_iter()
                .map(|id| {
                    DescribedGroup::default()
                        .with_group_id(GroupId(text(id)))
                        .with_error_code(error)
                })
                .collect()
        }
    };
    DescribeGroupsResponse::default().with_groups(groups.into_iter().chain(refused).collect())
}

pub(crate) async fn list_groups(
    ctx: &Context<'_>,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    match ctx.backends.groups.list_groups().await {
        Ok(groups) => ListGroupsResponse::default().with_groups(
            groups
                .into_iter()
                // A principal lists the groups it may describe.
                .filter(|g| ctx.may(Operation::Describe, ResourceType::Group, &g.group_id))
                .filter(|g| {
                    request.states_filter.is_empty()
                        || request
                            .states_filter
                            .iter()
                            .any(|s| s.as_str().eq_ignore_ascii_case(g.state.as_str()))
                })
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(GroupId(text(g.group_id)))
                        .with_protocol_type(text(g.protocol_type.unwrap_or_default()))
                        .with_group_state(text(g.state.as_str()))
                        .with_group_type(text("classic"))
                })
                .collect(),
        ),
        // Only the coordinator holds groups: other brokers have none to list.
        Err(e) if e.code() == ErrorCode::NotCoordinator => ListGroupsResponse::default(),
        Err(e) => ListGroupsResponse::default().with_error_code(code(e.code())),
    }
}
