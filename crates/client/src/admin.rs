//! The admin client: cluster and topic administration.

use std::collections::BTreeMap;

use crate::session::Channel;
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};

use crate::{Bootstrap, ClientError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller: ControllerDescription,
    pub brokers: Vec<BrokerDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerDescription {
    pub leader_id: Option<u64>,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerDescription {
    pub id: u64,
    pub addr: String,
    /// `alive` or `fenced`.
    pub state: String,
    pub epoch: u64,
    /// The partition store this incarnation registered with (a new id: a new or
    /// emptied store) and whether it had been closed cleanly.
    pub store_id: String,
    pub clean_shutdown: bool,
    /// Being decommissioned: no new replica is placed on it.
    pub draining: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: String,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDescription {
    pub partition: u32,
    /// `None` while the partition is offline.
    pub leader: Option<u64>,
    pub leader_epoch: u64,
    pub replicas: Vec<u64>,
    pub isr: Vec<u64>,
    pub partition_epoch: u64,
    pub high_watermark: u64,
    /// read_committed consumers read up to here (an open transaction holds it back).
    pub last_stable_offset: u64,
    pub log_end_offset: u64,
    pub log_start_offset: u64,
    /// Replicas outside the ISR that hold every committed record (KIP-966).
    pub eligible_leader_replicas: Vec<u64>,
    /// Why the partition has no leader (`None` while it has one).
    pub offline_reason: Option<String>,
    /// A reassignment in progress: replicas catching up to join, replicas leaving once
    /// they have.
    pub adding_replicas: Vec<u64>,
    pub removing_replicas: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct AdminClient {
    bootstrap: Bootstrap,
}

fn client(channel: Channel) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(channel)
        .max_decoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
}

/// The first failed item of a batch result, as an error.
fn first_error(results: &[pb::ItemResult]) -> Result<(), ClientError> {
    match results.iter().find(|r| !r.error_code.is_empty()) {
        Some(r) => Err(ClientError::from_item(&r.error_code, &r.error_message)),
        None => Ok(()),
    }
}

impl AdminClient {
    pub fn new(bootstrap: Bootstrap) -> Self {
        Self { bootstrap }
    }

    pub(crate) fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        let r = self
            .bootstrap
            .with_channel(|c| async move {
                client(c)
                    .describe_cluster(pb::DescribeClusterRequest {})
                    .await
            })
            .await?
            .into_inner();
        let controller = r.controller.unwrap_or_default();
        Ok(ClusterDescription {
            cluster_id: r.cluster_id,
            controller: ControllerDescription {
                leader_id: controller.leader_id,
                term: controller.term,
                voters: controller.voters,
                learners: controller.learners,
            },
            brokers: r
                .brokers
                .into_iter()
                .map(|b| BrokerDescription {
                    id: b.id,
                    addr: b.addr,
                    state: b.state,
                    epoch: b.epoch,
                    store_id: b.store_id,
                    clean_shutdown: b.clean_shutdown,
                    draining: b.draining,
                })
                .collect(),
        })
    }

    pub async fn create_topic(&self, topic: NewTopic) -> Result<(), ClientError> {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::NewTopic {
                name: topic.name,
                partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                configs: topic.configs.into_iter().collect(),
            }],
        };
        let r = self
            .bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).create_topics(request).await }
            })
            .await?;
        first_error(&r.into_inner().results)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = pb::DeleteTopicsRequest {
            names: vec![name.to_string()],
        };
        let r = self
            .bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).delete_topics(request).await }
            })
            .await?;
        first_error(&r.into_inner().results)
    }

    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let r = self
            .bootstrap
            .with_channel(|c| async move { client(c).list_topics(pb::ListTopicsRequest {}).await })
            .await?;
        Ok(r.into_inner().names)
    }

    /// Describes a topic, with each partition's offsets from its leader.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        self.describe(name, true).await
    }

    /// Describes a topic's assignment only (no offsets): what producers and consumers need.
    pub async fn describe_topic_leaders(
        &self,
        name: &str,
    ) -> Result<TopicDescription, ClientError> {
        self.describe(name, false).await
    }

    async fn describe(
        &self,
        name: &str,
        include_offsets: bool,
    ) -> Result<TopicDescription, ClientError> {
        let request = pb::DescribeTopicsRequest {
            names: vec![name.to_string()],
            include_offsets,
        };
        let r = self
            .bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).describe_topics(request).await }
            })
            .await?
            .into_inner();
        let topic = r.topics.into_iter().next().ok_or_else(|| {
            ClientError::from_item("UNKNOWN_SERVER_ERROR", "empty describe response")
        })?;
        if !topic.error_code.is_empty() {
            return Err(ClientError::from_item(
                &topic.error_code,
                &format!("topic '{}' does not exist", topic.name),
            ));
        }
        Ok(TopicDescription {
            name: topic.name,
            topic_id: topic.topic_id,
            configs: topic.configs.into_iter().collect(),
            partitions: topic
                .partitions
                .into_iter()
                .map(|p| PartitionDescription {
                    partition: p.partition,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas,
                    isr: p.isr,
                    partition_epoch: p.partition_epoch,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_end_offset: p.log_end_offset,
                    log_start_offset: p.log_start_offset,
                    eligible_leader_replicas: p.eligible_leader_replicas,
                    offline_reason: (!p.offline_reason.is_empty()).then_some(p.offline_reason),
                    adding_replicas: p.adding_replicas,
                    removing_replicas: p.removing_replicas,
                })
                .collect(),
        })
    }

    pub async fn create_partitions(&self, topic: &str, total: u32) -> Result<(), ClientError> {
        let request = pb::CreatePartitionsRequest {
            topic: topic.to_string(),
            total,
        };
        self.bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).create_partitions(request).await }
            })
            .await?;
        Ok(())
    }

    pub async fn alter_configs(
        &self,
        topic: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let request = pb::AlterConfigsRequest {
            topic: topic.to_string(),
            configs: configs.into_iter().collect(),
        };
        self.bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).alter_configs(request).await }
            })
            .await?;
        Ok(())
    }

    /// Preferred-leader election for one topic (or all); returns how many partitions
    /// changed leader.
    pub async fn elect_leaders(&self, topic: Option<&str>) -> Result<u64, ClientError> {
        let request = pb::ElectLeadersRequest {
            topic: topic.unwrap_or_default().to_string(),
            ..Default::default()
        };
        let response = self
            .bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).elect_leaders(request).await }
            })
            .await?;
        Ok(response.into_inner().partitions_elected)
    }

    /// Unclean election of one offline partition: an alive replica leads though it may
    /// lack committed records. Returns the new leader and leader epoch.
    pub async fn elect_unclean_leader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<(u64, u64), ClientError> {
        let request = pb::ElectLeadersRequest {
            topic: topic.to_string(),
            unclean: true,
            partition: Some(partition),
        };
        let response = self
            .bootstrap
            .with_channel(|c| {
                let request = request.clone();
                async move { client(c).elect_leaders(request).await }
            })
            .await?
            .into_inner();
        Ok((
            response.leader.unwrap_or_default(),
            response.leader_epoch.unwrap_or_default(),
        ))
    }
}
