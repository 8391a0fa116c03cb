//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup on the group coordinator the gRPC
//! GroupService uses: one group state machine for members of both protocols. Kafka
//! members' protocol metadata and assignments travel as the clients encoded them.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::ErrorCode;
use rill_coordinator::{JoinRequest, Protocol, SyncRequest};

use super::{code, Context};
use crate::consumer_protocol::{
    read_assignment, read_subscription, write_assignment, write_subscription,
};

/// The protocol type of Kafka's consumers (Connect and others are relayed, not read).
const CONSUMER: &str = "consumer";

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) async fn join_group(ctx: &Context<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let client_id = if ctx.client_id.is_empty() {
        "kafka"
    } else {
        ctx.client_id
    };
    let new_member_id = format!("{client_id}-{}", uuid::Uuid::new_v4());
    let consumer = request.protocol_type.as_str() == CONSUMER;
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        new_member_id: new_member_id.clone(),
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
        Err(e) if e.code() == ErrorCode::MemberIdRequired => {
            failed(ErrorCode::MemberIdRequired, new_member_id)
        }
        Err(e) => failed(e.code(), request.member_id.to_string()),
    }
}

pub(crate) async fn sync_group(ctx: &Context<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
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
