//! The admin client's consumer-group calls. The public types serialize to the
//! `group describe` JSON shape of DESIGN.md section 3.

use rill_proto::group::assignment_from_pb;
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};

use crate::{AdminClient, ClientError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupListing {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub members: Vec<GroupMember>,
    pub offsets: Vec<GroupOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    /// The partition's high watermark; -1 when its leader could not be asked.
    pub log_end_offset: i64,
    pub lag: i64,
}

/// How long a describe may take at the coordinator.
const DESCRIBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AdminClient {
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .list_groups(pb::ListGroupsRequest {})
                    .await
            })
            .await?;
        Ok(response
            .into_inner()
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id,
                state: g.state,
                protocol_type: g.protocol_type,
            })
            .collect())
    }

    /// The group as its coordinator sees it: asked there, so that what one call showed
    /// (a committed offset, say) the next one shows too, even when another node's replica
    /// of the metadata lags.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let request = pb::DescribeGroupRequest {
            group_id: group_id.to_string(),
        };
        let coordinator = crate::coordinator::CoordinatorChannel::new(
            self.bootstrap().clone(),
            crate::coordinator::CoordinatorKind::Group,
            group_id.to_string(),
        );
        let r = coordinator
            .call(DESCRIBE_TIMEOUT, |c, _| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).describe_group(request).await }
            })
            .await?;
        Ok(GroupDescription {
            group_id: r.group_id,
            state: r.state,
            generation: r.generation,
            protocol: r.protocol,
            leader: r.leader,
            members: r
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    assignment: assignment_from_pb(m.assignment)
                        .into_iter()
                        .map(|(topic, partitions)| TopicPartitions { topic, partitions })
                        .collect(),
                })
                .collect(),
            offsets: r
                .offsets
                .into_iter()
                .map(|o| GroupOffset {
                    topic: o.topic,
                    partition: o.partition,
                    committed: o.committed,
                    log_end_offset: o.log_end_offset,
                    lag: o.lag,
                })
                .collect(),
        })
    }

    /// Sets committed offsets of a group nobody is in (NON_EMPTY_GROUP otherwise).
    pub async fn alter_group_offsets(
        &self,
        group_id: &str,
        offsets: &[(String, u32, u64)],
    ) -> Result<(), ClientError> {
        let request = pb::AlterGroupOffsetsRequest {
            group_id: group_id.to_string(),
            offsets: offsets
                .iter()
                .map(|(topic, partition, offset)| pb::PartitionOffset {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: *offset,
                    metadata: String::new(),
                })
                .collect(),
        };
        self.bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move {
                    AdminServiceClient::new(c)
                        .alter_group_offsets(request)
                        .await
                }
            })
            .await?;
        Ok(())
    }
}
