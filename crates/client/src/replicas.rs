//! Inspecting a partition's replicas: every replica's offsets and epoch, and a checksum
//! of the same range on each (from the largest log start to the smallest high
//! watermark), so equal checksums mean the replicas agree below the high watermark.

use rill_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::metadata::ClusterMetadata;
use crate::{AdminClient, Bootstrap, ClientError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicasDescription {
    pub topic: String,
    pub partition: u32,
    pub leader: Option<u64>,
    pub replicas: Vec<ReplicaState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaState {
    pub broker: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub high_watermark: u64,
    pub leader_epoch: i32,
    pub checksum: String,
    pub checked_up_to: u64,
    /// Set when the replica could not be asked (its broker is down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub async fn describe_replicas(
    bootstrap: Bootstrap,
    topic: &str,
    partition: u32,
) -> Result<ReplicasDescription, ClientError> {
    let admin = AdminClient::new(bootstrap);
    let description = admin.describe_topic_leaders(topic).await?;
    let p = description
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .ok_or_else(|| ClientError::Server {
            code: rill_common::ErrorCode::UnknownTopicOrPartition,
            message: format!("{topic} has no partition {partition}"),
        })?
        .clone();
    let metadata = ClusterMetadata::new(admin);
    metadata.refresh(topic).await?;
    let ask = |broker: u64, from: u64, to: u64| {
        let metadata = metadata.clone();
        async move {
            let mut client = metadata.broker(broker)?;
            let request = pb::DescribeReplicaRequest {
                topic: topic.to_string(),
                partition,
                checksum_from: from,
                checksum_to: to,
            };
            client
                .describe_replica(request)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| ClientError::from_status(&s))
        }
    };
    let mut first = Vec::new();
    for b in &p.replicas {
        first.push((*b, ask(*b, 0, 0).await));
    }
    let reachable = first.iter().filter_map(|(_, r)| r.as_ref().ok());
    let from = reachable
        .clone()
        .map(|r| r.log_start_offset)
        .max()
        .unwrap_or(0);
    let to = reachable.map(|r| r.high_watermark).min().unwrap_or(0);
    let mut replicas = Vec::new();
    for (broker, earlier) in first {
        let result = match earlier {
            Ok(_) => ask(broker, from, to).await,
            Err(e) => Err(e),
        };
        replicas.push(match result {
            Ok(r) => ReplicaState {
                broker,
                log_start_offset: r.log_start_offset,
                log_end_offset: r.log_end_offset,
                high_watermark: r.high_watermark,
                leader_epoch: r.leader_epoch,
                checksum: r.checksum,
                checked_up_to: r.checked_up_to,
                error: None,
            },
            Err(e) => ReplicaState {
                broker,
                log_start_offset: 0,
                log_end_offset: 0,
                high_watermark: 0,
                leader_epoch: -1,
                checksum: String::new(),
                checked_up_to: 0,
                error: Some(e.to_string()),
            },
        });
    }
    Ok(ReplicasDescription {
        topic: topic.to_string(),
        partition,
        leader: p.leader,
        replicas,
    })
}
