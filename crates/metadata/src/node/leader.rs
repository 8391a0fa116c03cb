//! What only the active controller does: turn requests into metadata commands through
//! the I/O-free decisions, write them, track broker heartbeats and fence brokers whose
//! session expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use rill_common::{BrokerId, ErrorCode, NodeId};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::MetadataNode;
use crate::controller::{acls, election, groups, isr, liveness, topics, users};
use crate::model::{MetadataCommand, StoreInfo};
use crate::types::{ControllerReply, ControllerRequest, ForwardedReply};
use crate::MetadataError;

/// In-memory state of the active controller; meaningless on other nodes and rebuilt
/// when leadership changes (heartbeat deadlines restart on failover).
#[derive(Default)]
pub(super) struct LeaderState {
    liveness: Mutex<Liveness>,
    /// Serializes decide-then-write, so each decision sees the previous one's result.
    pub(super) decisions: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Liveness {
    /// The term in which this node started tracking, if it leads.
    term: Option<u64>,
    since: Option<Instant>,
    last_heartbeat: HashMap<BrokerId, Instant>,
    last_rebalance: Option<Instant>,
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
                storage_failing,
            } => {
                self.heartbeat(broker_id, broker_epoch, storage_failing)
                    .await
            }
            ControllerRequest::AlterPartitions(requests) => {
                let _guard = self.leader.decisions.lock().await;
                let isr::AlterPartitionsPlan { changes, results } =
                    isr::plan_alter_partitions(&self.state(), &requests);
                let log_index = if changes.is_empty() {
                    None
                } else {
                    let (_, log_index) = self
                        .write(MetadataCommand::AlterPartitions { changes })
                        .await?;
                    Some(log_index)
                };
                let mut changed = requests.iter().zip(&results).filter(|(_, r)| r.is_ok());
                if let Some((first, _)) = changed.next() {
                    let others = changed.count();
                    info!(topic = %first.topic, partition = first.partition, isr = ?first.isr,
                        broker_id = first.broker_id, others, "ISR changed");
                }
                Ok(ForwardedReply {
                    reply: ControllerReply::PartitionsAltered { results },
                    log_index,
                })
            }
            ControllerRequest::AddLearner { node_id, addr } => {
                self.add_learner(node_id, addr).await
            }
            ControllerRequest::AddVoter { node_id } => self.add_voter(node_id).await,
            ControllerRequest::RemoveVoter { node_id } => self.remove_voter(node_id).await,
            ControllerRequest::AlterReassignments(requests) => {
                self.alter_reassignments(requests).await
            }
            ControllerRequest::Rebalance { execute } => self.rebalance(execute).await,
            ControllerRequest::DecommissionBroker { broker_id, cancel } => {
                self.decommission_broker(broker_id, cancel).await
            }
            ControllerRequest::PutGroup { group } => {
                let (_, log_index) = self.write(MetadataCommand::PutGroup { group }).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::CommitOffsetsBatch { commits } => {
                let (_, log_index) = self
                    .write(MetadataCommand::CommitOffsetsBatch { commits })
                    .await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::CommitOffsets { group_id, offsets } => {
                let command = MetadataCommand::CommitOffsets { group_id, offsets };
                let (_, log_index) = self.write(command).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::DeleteOffsets {
                group_id,
                partitions,
            } => {
                let command = MetadataCommand::DeleteOffsets {
                    group_id,
                    partitions,
                };
                let (_, log_index) = self.write(command).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::PutTransaction {
                transaction,
                offsets,
            } => {
                let command = MetadataCommand::PutTransaction {
                    transaction,
                    offsets,
                };
                let (_, log_index) = self.write(command).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::Done,
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::AllocateProducerIds { count } => {
                let (start, log_index) = self
                    .write(MetadataCommand::AllocateProducerIds { count })
                    .await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::ProducerIds {
                        start: start.unwrap_or_default() as i64,
                        count,
                    },
                    log_index: Some(log_index),
                })
            }
            ControllerRequest::ElectPreferredLeaders { topic } => {
                let (partitions, log_index) =
                    self.elect_preferred_leaders(topic.as_deref()).await?;
                Ok(ForwardedReply {
                    reply: ControllerReply::LeadersElected { partitions },
                    log_index,
                })
            }
            ControllerRequest::RegisterBroker {
                broker_id,
                addr,
                listeners,
                store,
            } => {
                self.record_heartbeat(broker_id);
                let _guard = self.leader.decisions.lock().await;
                let before = self.state();
                let lost_data = store.lost_data_since(before.brokers.get(&broker_id));
                let changes = liveness::changes_on_register(&before, broker_id, &store);
                let command = MetadataCommand::RegisterBroker {
                    broker_id,
                    addr,
                    listeners,
                    store: store.clone(),
                    changes,
                };
                let (epoch, log_index) = self.write(command).await?;
                let broker_epoch = epoch
                    .ok_or_else(|| MetadataError::Raft("registration returned no epoch".into()))?;
                info!(broker_id, broker_epoch, store_id = %store.store_id,
                    clean_shutdown = store.clean_shutdown, "broker registered");
                if lost_data {
                    self.report_lost_store(broker_id, &store);
                }
                Ok(ForwardedReply {
                    reply: ControllerReply::BrokerRegistered { broker_epoch },
                    log_index: Some(log_index),
                })
            }
            other => {
                let _guard = self.leader.decisions.lock().await;
                // Decide on everything committed so far, including earlier terms' entries.
                let state = self.linearizable_state().await?;
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
                    ControllerRequest::ResetGroupOffsets { group_id, offsets } => {
                        groups::plan_reset_offsets(&state, &group_id, offsets)?
                    }
                    ControllerRequest::PutUser { name, credentials } => {
                        users::plan_put_user(&name, credentials)?
                    }
                    ControllerRequest::DeleteUser { name } => {
                        users::plan_delete_user(&state, &name)?
                    }
                    ControllerRequest::CreateAcls { bindings } => acls::plan_create_acls(bindings)?,
                    ControllerRequest::DeleteAcls { filters } => {
                        acls::plan_delete_acls(&state, &filters)?
                    }
                    ControllerRequest::ElectUncleanLeader {
                        topic,
                        partition,
                        candidate,
                    } => {
                        let change =
                            liveness::plan_unclean_election(&state, &topic, partition, candidate)?;
                        let (leader, leader_epoch) =
                            (change.leader.unwrap_or_default(), change.leader_epoch);
                        let (applied, log_index) = self
                            .write(MetadataCommand::ElectLeaders {
                                changes: vec![change],
                            })
                            .await?;
                        if applied != Some(1) {
                            return Err(MetadataError::rejected(
                                ErrorCode::InvalidUpdateVersion,
                                format!("{topic}-{partition} changed concurrently; retry"),
                            ));
                        }
                        warn!(topic = %topic, partition, leader, leader_epoch,
                            "unclean leader election by an operator: records the new leader lacks are lost");
                        return Ok(ForwardedReply {
                            reply: ControllerReply::UncleanLeaderElected {
                                leader,
                                leader_epoch,
                            },
                            log_index: Some(log_index),
                        });
                    }
                    ControllerRequest::RegisterBroker { .. }
                    | ControllerRequest::BrokerHeartbeat { .. }
                    | ControllerRequest::AlterPartitions(_)
                    | ControllerRequest::ElectPreferredLeaders { .. }
                    | ControllerRequest::AllocateProducerIds { .. }
                    | ControllerRequest::PutGroup { .. }
                    | ControllerRequest::CommitOffsets { .. }
                    | ControllerRequest::CommitOffsetsBatch { .. }
                    | ControllerRequest::DeleteOffsets { .. }
                    | ControllerRequest::PutTransaction { .. }
                    | ControllerRequest::AlterReassignments(_)
                    | ControllerRequest::Rebalance { .. }
                    | ControllerRequest::DecommissionBroker { .. }
                    | ControllerRequest::AddVoter { .. }
                    | ControllerRequest::RemoveVoter { .. }
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
    pub(super) async fn write(
        &self,
        command: MetadataCommand,
    ) -> Result<(Option<u64>, u64), MetadataError> {
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

    /// A broker came back with a new or emptied store (or lost acknowledged writes): its
    /// replicas rejoin as followers; partitions it was the last holder of stay offline,
    /// and a human must choose whether to elect a replica that may lack records.
    fn report_lost_store(&self, broker_id: BrokerId, store: &StoreInfo) {
        warn!(broker_id, store_id = %store.store_id, clean_shutdown = store.clean_shutdown,
            "broker registered with a new or emptied partition store (or lost unflushed writes): \
             its replicas may not lead until they have caught up");
        let state = self.state();
        for topic in state.topics.values() {
            for p in &topic.partitions {
                let without_eligible = p.isr.is_empty() && p.elr.is_empty();
                if !(p.replicas.contains(&broker_id) && without_eligible) {
                    continue;
                }
                let why = liveness::offline_reason(&state, p).unwrap_or_default();
                error!(topic = %topic.name, partition = p.partition, broker_id,
                    "partition offline: {why}");
            }
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
        storage_failing: bool,
    ) -> Result<ForwardedReply, MetadataError> {
        let state = self.state();
        let broker = state.current_broker(broker_id, broker_epoch)?;
        self.record_heartbeat(broker_id);
        if storage_failing {
            // It cannot persist what it would lead or follow: leaderships and ISRs go now.
            if !broker.fenced {
                self.fence(broker_id, broker_epoch, "its partition store is failing")
                    .await?;
            }
            return Ok(ForwardedReply {
                reply: ControllerReply::Heartbeat { fenced: true },
                log_index: None,
            });
        }
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
        let mut new_term = false;
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
                new_term = true;
                *liveness = Liveness {
                    term: Some(info.term),
                    since: Some(Instant::now()),
                    last_heartbeat: HashMap::new(),
                    last_rebalance: Some(Instant::now()),
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
        let (expired, suspects) = {
            let liveness = self
                .leader
                .liveness
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let silent = |silence| {
                liveness::silent_brokers(
                    &self.state(),
                    &liveness.last_heartbeat,
                    since,
                    Instant::now(),
                    silence,
                )
            };
            let expired = silent(self.config.broker_session_timeout);
            // A new controller has heard from nobody yet, and the node that led before
            // (often the one whose death started this term) may be gone: every broker is
            // probed at once, so a dead one is fenced now, not after two heartbeats.
            let suspect_after = if new_term {
                Duration::ZERO
            } else {
                self.suspect_after()
            };
            let suspects: Vec<(BrokerId, u64)> = silent(suspect_after)
                .into_iter()
                .filter(|b| !expired.contains(b))
                .collect();
            (expired, suspects)
        };
        for (broker_id, broker_epoch) in expired {
            self.fence(broker_id, broker_epoch, "broker session expired")
                .await?;
        }
        let why = if new_term {
            "a new controller probed the broker and its port refuses connections"
        } else {
            "broker missed heartbeats and its port refuses connections"
        };
        for (broker_id, broker_epoch) in self.dead_by_probe(suspects).await {
            self.fence(broker_id, broker_epoch, why).await?;
        }
        self.complete_reassignments().await?;
        if self.rebalance_due() {
            self.elect_preferred_leaders(None).await?;
        }
        Ok(())
    }
}

impl MetadataNode {
    /// Moves leadership back to preferred replicas that are alive and in the ISR.
    /// Returns how many partitions changed leader and the log index written, if any.
    async fn elect_preferred_leaders(
        &self,
        topic: Option<&str>,
    ) -> Result<(u64, Option<u64>), MetadataError> {
        let _guard = self.leader.decisions.lock().await;
        let changes = election::preferred_leader_changes(&self.state(), topic)?;
        if changes.is_empty() {
            return Ok((0, None));
        }
        let (applied, log_index) = self
            .write(MetadataCommand::ElectLeaders { changes })
            .await?;
        let applied = applied.unwrap_or_default();
        info!(partitions = applied, "preferred leaders elected");
        Ok((applied, Some(log_index)))
    }

    /// Whether the periodic preferred-leader election is due (and marks it done).
    fn rebalance_due(&self) -> bool {
        let Some(interval) = self.config.leader_rebalance_interval else {
            return false;
        };
        let mut liveness = self
            .leader
            .liveness
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let due = liveness
            .last_rebalance
            .is_none_or(|at| at.elapsed() >= interval);
        if due {
            liveness.last_rebalance = Some(Instant::now());
        }
        due
    }

    /// Silence after which a broker is probed: two heartbeats missed (at least 500 ms).
    fn suspect_after(&self) -> Duration {
        (self.config.broker_heartbeat_interval * 2).max(Duration::from_millis(500))
    }

    /// Fences one broker incarnation: it leaves every ISR, and the partitions it led get
    /// a new leader from the ISR.
    async fn fence(
        &self,
        broker_id: BrokerId,
        broker_epoch: u64,
        why: &str,
    ) -> Result<(), MetadataError> {
        let _guard = self.leader.decisions.lock().await;
        let changes = liveness::changes_on_fence(&self.state(), broker_id);
        warn!(
            broker_id,
            broker_epoch,
            partitions_changed = changes.len(),
            "{why}; fencing it"
        );
        self.write(MetadataCommand::FenceBroker {
            broker_id,
            broker_epoch,
            changes,
        })
        .await?;
        Ok(())
    }

    /// The suspects whose advertised address refuses connections: no process listens
    /// there, so the incarnation is dead and need not wait out its session timeout
    /// (what a SIGKILLed broker looks like). A paused, slow or unreachable broker
    /// accepts or times out and keeps its session, so a probe never causes flapping.
    async fn dead_by_probe(&self, suspects: Vec<(BrokerId, u64)>) -> Vec<(BrokerId, u64)> {
        let state = self.state();
        let mut probes = tokio::task::JoinSet::new();
        for (broker_id, epoch) in suspects {
            let Some(addr) = state.brokers.get(&broker_id).map(|b| b.addr.clone()) else {
                continue;
            };
            probes.spawn(async move {
                let connect = tokio::net::TcpStream::connect(addr);
                let refused = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, connect).await,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
                );
                refused.then_some((broker_id, epoch))
            });
        }
        probes.join_all().await.into_iter().flatten().collect()
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

pub(super) fn not_controller_or(
    message: String,
    leader: Option<(NodeId, String)>,
) -> MetadataError {
    if message.contains("forward") || message.contains("leader") {
        MetadataError::NotController { leader }
    } else {
        MetadataError::Raft(message)
    }
}
