//! What only the active controller does: turn requests into metadata commands through
//! the I/O-free decisions, write them, track broker heartbeats and fence brokers whose
//! session expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use rill_common::{BrokerId, ErrorCode, NodeId};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::MetadataNode;
use crate::controller::{isr, liveness, topics};
use crate::model::MetadataCommand;
use crate::types::{ControllerReply, ControllerRequest, ForwardedReply};
use crate::MetadataError;

/// In-memory state of the active controller; meaningless on other nodes and rebuilt
/// when leadership changes (heartbeat deadlines restart on failover).
#[derive(Default)]
pub(super) struct LeaderState {
    liveness: Mutex<Liveness>,
    /// Serializes decide-then-write, so each decision sees the previous one's result.
    decisions: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Liveness {
    /// The term in which this node started tracking, if it leads.
    term: Option<u64>,
    since: Option<Instant>,
    last_heartbeat: HashMap<BrokerId, Instant>,
}

impl MetadataNode {
    /// Executes a request if this node is the leader, else `NotController` with a hint.
    pub async fn execute_as_leader(
        &self,
        request: ControllerRequest,
    ) -> Result<ForwardedReply, MetadataError> {
        let info = self.controller_info();
        if !info.is_leader {
            return Err(MetadataError::NotController {
                leader: self.known_leader().filter(|(id, _)| *id != self.node_id()),
            });
        }
        match request {
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
            } => self.heartbeat(broker_id, broker_epoch).await,
            ControllerRequest::AlterPartition(request) => {
                let _guard = self.leader.decisions.lock().await;
                let change = isr::plan_alter_partition(&self.state(), &request)?;
                let (epoch, log_index) = self
                    .write(MetadataCommand::AlterPartition { change })
                    .await?;
                info!(topic = %request.topic, partition = request.partition, isr = ?request.isr, "ISR changed");
                Ok(ForwardedReply {
                    reply: ControllerReply::PartitionAltered {
                        partition_epoch: epoch.unwrap_or_default(),
                    },
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::AddLearner { node_id, addr } => {
                self.add_learner(node_id, addr).await
            }
            ControllerRequest::RegisterBroker { broker_id, addr } => {
                self.record_heartbeat(broker_id);
                let _guard = self.leader.decisions.lock().await;
                let changes = liveness::changes_on_register(&self.state(), broker_id);
                let command = MetadataCommand::RegisterBroker {
                    broker_id,
                    addr,
                    changes,
                };
                let (epoch, log_index) = self.write(command).await?;
                let broker_epoch = epoch
                    .ok_or_else(|| MetadataError::Raft("registration returned no epoch".into()))?;
                info!(broker_id, broker_epoch, "broker registered");
                Ok(ForwardedReply {
                    reply: ControllerReply::BrokerRegistered { broker_epoch },
                    log_index: Some(log_index),
                })
            }
            other => {
                let _guard = self.leader.decisions.lock().await;
                // Decide on everything committed so far, including earlier terms' entries.
                self.raft
                    .ensure_linearizable()
                    .await
                    .map_err(|e| not_controller_or(e.to_string(), self.known_leader()))?;
                let state = self.state();
                let command = match other {
                    ControllerRequest::CreateTopic {
                        name,
                        partitions,
                        replication_factor,
                        configs,
                    } => topics::plan_create_topic(
                        &state,
                        &name,
                        partitions,
                        replication_factor,
                        &configs,
                        uuid::Uuid::new_v4().to_string(),
                    )?,
                    ControllerRequest::DeleteTopic { name } => {
                        topics::plan_delete_topic(&state, &name)?
                    }
                    ControllerRequest::CreatePartitions { name, total } => {
                        topics::plan_create_partitions(&state, &name, total)?
                    }
                    ControllerRequest::AlterConfigs { name, configs } => {
                        topics::plan_alter_configs(&state, &name, &configs)?
                    }
                    ControllerRequest::RegisterBroker { .. }
                    | ControllerRequest::BrokerHeartbeat { .. }
                    | ControllerRequest::AlterPartition(_)
                    | ControllerRequest::AddLearner { .. } => {
                        return Err(MetadataError::rejected(
                            ErrorCode::InvalidRequest,
                            "unroutable request",
                        ))
                    }
                };
                let (_, log_index) = self.write(command).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
        }
    }

    /// Writes one command through Raft; returns its outcome value and log index.
    async fn write(&self, command: MetadataCommand) -> Result<(Option<u64>, u64), MetadataError> {
        match self.raft.client_write(command).await {
            Ok(response) => {
                let index = response.log_id.index;
                response.data.map(|value| (value, index))
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(MetadataError::NotController {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                })
            }
            Err(e) => Err(MetadataError::Raft(e.to_string())),
        }
    }

    fn record_heartbeat(&self, broker_id: BrokerId) {
        let mut liveness = self
            .leader
            .liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        liveness.last_heartbeat.insert(broker_id, Instant::now());
    }

    async fn heartbeat(
        &self,
        broker_id: BrokerId,
        broker_epoch: u64,
    ) -> Result<ForwardedReply, MetadataError> {
        let state = self.state();
        let broker = state.current_broker(broker_id, broker_epoch)?;
        self.record_heartbeat(broker_id);
        let mut log_index = None;
        if broker.fenced {
            let _guard = self.leader.decisions.lock().await;
            let changes = liveness::changes_on_unfence(&self.state(), broker_id);
            let command = MetadataCommand::UnfenceBroker {
                broker_id,
                broker_epoch,
                changes,
            };
            log_index = Some(self.write(command).await?.1);
            info!(broker_id, "broker unfenced");
        }
        Ok(ForwardedReply {
            reply: ControllerReply::Heartbeat { fenced: false },
            log_index,
        })
    }

    async fn add_learner(
        &self,
        node_id: NodeId,
        addr: String,
    ) -> Result<ForwardedReply, MetadataError> {
        let known = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node_id)
            .cloned();
        if known.is_some_and(|n| n.addr == addr) {
            return Ok(ForwardedReply {
                reply: ControllerReply::Done,
                log_index: None,
            });
        }
        let response = self
            .raft
            .add_learner(node_id, BasicNode::new(&addr), false)
            .await
            .map_err(|e| not_controller_or(e.to_string(), self.known_leader()))?;
        info!(node_id, %addr, "added learner");
        Ok(ForwardedReply {
            reply: ControllerReply::Done,
            log_index: Some(response.log_id.index),
        })
    }

    /// Runs on every node; acts only while this node leads: initializes the cluster id
    /// and fences brokers whose session expired.
    pub(super) async fn controller_loop(self: Arc<Self>, cancel: CancellationToken) {
        let tick = self
            .config
            .broker_heartbeat_interval
            .min(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if let Err(e) = self.controller_pass().await {
                warn!("controller pass: {e}");
            }
        }
    }

    async fn controller_pass(&self) -> Result<(), MetadataError> {
        let info = self.controller_info();
        let since = {
            let mut liveness = self
                .leader
                .liveness
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !info.is_leader {
                *liveness = Liveness::default();
                return Ok(());
            }
            if liveness.term != Some(info.term) {
                *liveness = Liveness {
                    term: Some(info.term),
                    since: Some(Instant::now()),
                    last_heartbeat: HashMap::new(),
                };
                info!(term = info.term, "became the active controller");
            }
            liveness.since.unwrap_or_else(Instant::now)
        };
        if self.state().cluster_id.is_none() {
            let cluster_id = uuid::Uuid::new_v4().to_string();
            self.write(MetadataCommand::InitCluster { cluster_id })
                .await?;
        }
        let expired = {
            let liveness = self
                .leader
                .liveness
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            liveness::expired_brokers(
                &self.state(),
                &liveness.last_heartbeat,
                since,
                Instant::now(),
                self.config.broker_session_timeout,
            )
        };
        for (broker_id, broker_epoch) in expired {
            let _guard = self.leader.decisions.lock().await;
            let changes = liveness::changes_on_fence(&self.state(), broker_id);
            warn!(
                broker_id,
                partitions_changed = changes.len(),
                "broker session expired; fencing it"
            );
            self.write(MetadataCommand::FenceBroker {
                broker_id,
                broker_epoch,
                changes,
            })
            .await?;
        }
        Ok(())
    }
}

fn not_controller_or(message: String, leader: Option<(NodeId, String)>) -> MetadataError {
    if message.contains("forward") || message.contains("leader") {
        MetadataError::NotController { leader }
    } else {
        MetadataError::Raft(message)
    }
}
