//! The client's view of the cluster: partition leaders and broker addresses, refreshed
//! on demand (leadership errors) and at most every few milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::Channel;
use rill_common::ErrorCode;
use rill_proto::v1::broker_service_client::BrokerServiceClient;

use crate::{AdminClient, ClientError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    pub leader: Option<u64>,
    pub leader_epoch: u64,
}

#[derive(Default)]
struct Snapshot {
    brokers: HashMap<u64, String>,
    topics: HashMap<String, (Instant, Vec<PartitionLeader>)>,
}

#[derive(Clone)]
pub struct ClusterMetadata {
    admin: AdminClient,
    snapshot: Arc<Mutex<Snapshot>>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(50);
/// How long a topic that a node does not know yet is waited for (metadata propagation).
const UNKNOWN_TOPIC_WAIT: Duration = Duration::from_secs(2);

pub type BrokerClient = BrokerServiceClient<Channel>;

impl ClusterMetadata {
    pub fn new(admin: AdminClient) -> Self {
        Self {
            admin,
            snapshot: Arc::default(),
            channels: Arc::default(),
            refresh: Arc::default(),
        }
    }

    fn snapshot(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The partitions of `topic`, from cache or freshly fetched.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<PartitionLeader>, ClientError> {
        if let Some((_, parts)) = self.snapshot().topics.get(topic) {
            return Ok(parts.clone());
        }
        self.refresh(topic).await?;
        self.snapshot()
            .topics
            .get(topic)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| ClientError::Server {
                code: ErrorCode::UnknownTopicOrPartition,
                message: format!("topic '{topic}' does not exist"),
            })
    }

    /// A producer id (and epoch) for an idempotent producer, from any node.
    pub async fn init_producer_id(&self) -> Result<(i64, i16), ClientError> {
        let r = self
            .admin
            .bootstrap()
            .with_channel(|c| async move {
                rill_proto::v1::broker_service_client::BrokerServiceClient::new(c)
                    .init_producer_id(rill_proto::v1::InitProducerIdRequest {})
                    .await
            })
            .await?
            .into_inner();
        Ok((r.producer_id, r.producer_epoch as i16))
    }

    /// Fetches the topic's partitions and the brokers again (rate-limited).
    pub async fn refresh(&self, topic: &str) -> Result<(), ClientError> {
        let _guard = self.refresh.lock().await;
        let fresh = self
            .snapshot()
            .topics
            .get(topic)
            .is_some_and(|(at, _)| at.elapsed() < MIN_REFRESH_INTERVAL);
        if fresh {
            return Ok(());
        }
        let deadline = Instant::now() + UNKNOWN_TOPIC_WAIT;
        let description = loop {
            match self.admin.describe_topic_leaders(topic).await {
                Err(e)
                    if e.code() == ErrorCode::UnknownTopicOrPartition
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other?,
            }
        };
        let cluster = self.admin.describe_cluster().await?;
        self.admin
            .bootstrap()
            .learn(cluster.brokers.iter().map(|b| b.addr.clone()));
        let mut snapshot = self.snapshot();
        snapshot.brokers = cluster
            .brokers
            .into_iter()
            .map(|b| (b.id, b.addr))
            .collect();
        let leaders = description
            .partitions
            .iter()
            .map(|p| PartitionLeader {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
            })
            .collect();
        snapshot
            .topics
            .insert(topic.to_string(), (Instant::now(), leaders));
        Ok(())
    }

    /// The current leader of a partition and a client for it.
    pub async fn leader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<(u64, BrokerClient), ClientError> {
        let parts = self.partitions(topic).await?;
        let leader = parts
            .get(partition as usize)
            .ok_or_else(|| ClientError::Server {
                code: ErrorCode::UnknownTopicOrPartition,
                message: format!("{topic} has no partition {partition}"),
            })?
            .leader
            .ok_or_else(|| ClientError::Server {
                code: ErrorCode::NotLeaderOrFollower,
                message: format!("{topic}-{partition} has no leader (offline)"),
            })?;
        Ok((leader, self.broker(leader)?))
    }

    pub fn broker(&self, id: u64) -> Result<BrokerClient, ClientError> {
        let addr =
            self.snapshot()
                .brokers
                .get(&id)
                .cloned()
                .ok_or_else(|| ClientError::Server {
                    code: ErrorCode::BrokerNotAvailable,
                    message: format!("broker {id} is unknown"),
                })?;
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&addr) {
            Some(c) => c.clone(),
            None => {
                let c = self.admin.bootstrap().channel_to(&addr)?;
                channels.insert(addr, c.clone());
                c
            }
        };
        Ok(BrokerServiceClient::new(channel)
            .max_decoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(rill_proto::MAX_MESSAGE_BYTES))
    }
}
