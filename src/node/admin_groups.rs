//! AdminService's consumer-group calls: list, describe (with committed offsets and lag
//! against each partition's high watermark) and offset resets. They read the groups as
//! the coordinator last persisted them in the metadata log.

use rill_common::group::GroupState;
use rill_common::ErrorCode;
use rill_metadata::grpc::status;
use rill_metadata::{ControllerRequest, OffsetCommit};
use rill_proto::group::assignment_to_pb;
use rill_proto::v1 as pb;
use tonic::Status;

use super::admin_service::AdminServiceImpl;

impl AdminServiceImpl {
    pub(super) fn group_listings(&self) -> Vec<pb::GroupListing> {
        let state = self.metadata.state();
        let mut listings: Vec<pb::GroupListing> = state
            .groups
            .values()
            .map(|g| pb::GroupListing {
                group_id: g.group_id.clone(),
                state: g.state.as_str().to_string(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
            })
            .collect();
        // Groups that only committed offsets (assign mode, resets) are empty groups.
        for group_id in state.offsets.keys() {
            if !state.groups.contains_key(group_id) {
                listings.push(pb::GroupListing {
                    group_id: group_id.clone(),
                    state: GroupState::Empty.as_str().to_string(),
                    protocol_type: String::new(),
                });
            }
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listings
    }

    pub(super) async fn group_description(
        &self,
        group_id: &str,
    ) -> Result<pb::DescribeGroupResponse, Status> {
        // At the coordinator (the active controller) every committed entry is applied
        // first, so a describe never shows less than one before it did.
        let state = match self.metadata.controller_info().is_leader {
            true => self
                .metadata
                .linearizable_state()
                .await
                .unwrap_or_else(|_| self.metadata.state()),
            false => self.metadata.state(),
        };
        let group = state.groups.get(group_id);
        let committed = state.offsets.get(group_id);
        if group.is_none() && committed.is_none() {
            return Err(rill_proto::error_status(
                ErrorCode::GroupIdNotFound,
                &format!("group {group_id} does not exist"),
            ));
        }
        let mut offsets = Vec::new();
        for (topic, partitions) in committed.into_iter().flatten() {
            for (partition, c) in partitions {
                // -1 (lag unknown) for a deleted topic or a leader that cannot answer.
                let log_end = if state.partition(topic, *partition).is_some() {
                    self.partition_offsets(&state, topic, *partition)
                        .await
                        .map_or(-1, |o| o.high_watermark as i64)
                } else {
                    -1
                };
                offsets.push(pb::GroupOffsetDescription {
                    topic: topic.clone(),
                    partition: *partition,
                    committed: c.offset,
                    log_end_offset: log_end,
                    lag: if log_end < 0 {
                        -1
                    } else {
                        (log_end - c.offset as i64).max(0)
                    },
                });
            }
        }
        Ok(pb::DescribeGroupResponse {
            group_id: group_id.to_string(),
            state: group
                .map_or(GroupState::Empty, |g| g.state)
                .as_str()
                .to_string(),
            generation: group.map_or(0, |g| g.generation),
            protocol: group.and_then(|g| g.protocol.clone()).unwrap_or_default(),
            leader: group.and_then(|g| g.leader.clone()).unwrap_or_default(),
            members: group
                .into_iter()
                .flat_map(|g| &g.members)
                .map(|m| pb::GroupMemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    assignment: assignment_to_pb(&m.assignment),
                })
                .collect(),
            offsets,
        })
    }

    pub(super) async fn reset_group_offsets(
        &self,
        request: pb::AlterGroupOffsetsRequest,
    ) -> Result<(), Status> {
        let offsets = request
            .offsets
            .into_iter()
            .map(OffsetCommit::from)
            .collect();
        self.metadata
            .submit(ControllerRequest::ResetGroupOffsets {
                group_id: request.group_id,
                offsets,
            })
            .await
            .map(|_| ())
            .map_err(|e| status(&e))
    }
}
