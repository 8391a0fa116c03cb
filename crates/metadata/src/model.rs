//! The metadata model and the commands of the metadata log. `apply` is deterministic:
//! every replica that applies the same commands in the same order holds the same state.
//! It re-checks the conflicts a concurrent decision could have missed (a name taken, a
//! partition epoch moved), so a stale decision is rejected instead of corrupting state.

use std::collections::BTreeMap;

use rill_common::group::{GroupDescription, GroupState};
use rill_common::{BrokerId, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::MetadataError;

/// One broker as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    pub id: BrokerId,
    pub addr: String,
    /// The addresses it advertises on its named Kafka and client gRPC listeners.
    #[serde(default)]
    pub listeners: AdvertisedListeners,
    /// Set at each registration to the log index of the registration: a restarted broker
    /// always gets a larger epoch than any earlier incarnation.
    pub epoch: u64,
    pub fenced: bool,
    /// The partition store this incarnation registered with.
    #[serde(default)]
    pub store: StoreInfo,
    /// Being decommissioned (`rill broker decommission`): its replicas move off it and no
    /// new replica is placed on it. Kept across re-registrations.
    #[serde(default)]
    pub draining: bool,
}

impl Broker {
    pub fn is_alive(&self) -> bool {
        !self.fenced
    }

    /// Alive and not draining: new replicas may be placed on it.
    pub fn is_placeable(&self) -> bool {
        self.is_alive() && !self.draining
    }
}

/// Listener name -> the address a broker advertises on it. A client is told the brokers'
/// addresses on the listener it connected through (a Kafka listener, or a client gRPC
/// listener; without one, the broker's `addr`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertisedListeners {
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
    #[serde(default)]
    pub grpc: BTreeMap<String, String>,
}

impl Broker {
    /// The gRPC address a client that came in through `listener` can reach this broker at.
    pub fn grpc_addr(&self, listener: Option<&str>) -> &str {
        listener
            .and_then(|l| self.listeners.grpc.get(l))
            .unwrap_or(&self.addr)
    }
}

/// A broker's partition store as the broker registers with it (KIP-858's directory id,
/// KIP-966's unclean-shutdown detection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// Created with the store. Another id than the broker's last registration named
    /// means a new, emptied or replaced store.
    pub store_id: String,
    /// The store was closed cleanly before this start.
    pub clean_shutdown: bool,
    /// The broker acknowledges writes before they are fsynced (`log.flush.mode=interval`),
    /// so an unclean shutdown may have lost records it counted as replicated.
    pub acks_before_fsync: bool,
}

impl StoreInfo {
    /// Whether a broker registering with this store may lack records its replicas held
    /// when it last registered (`previous`): a different store, or unflushed
    /// acknowledged writes lost in an unclean shutdown. A broker never registered before
    /// holds no replicas.
    pub fn lost_data_since(&self, previous: Option<&Broker>) -> bool {
        let Some(previous) = previous else {
            return false;
        };
        let replaced =
            !previous.store.store_id.is_empty() && previous.store.store_id != self.store_id;
        replaced || (!self.clean_shutdown && self.acks_before_fsync)
    }
}

/// The replication state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub partition: u32,
    /// Replica assignment; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// `None` while the partition is offline.
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change.
    pub leader_epoch: u64,
    pub isr: Vec<BrokerId>,
    /// Bumped on every change of leader or ISR; compare-and-set token for changes.
    pub partition_epoch: u64,
    /// Eligible leader replicas (KIP-966): replicas outside the ISR that left it only
    /// because it fell below `min.insync.replicas` (the high watermark stood still since),
    /// so they hold every committed record and may lead when no ISR member is alive.
    #[serde(default)]
    pub elr: Vec<BrokerId>,
    /// The leader epoch an unclean election began, if one did: replicas whose data
    /// predates it may lose records below their high watermark to follow it.
    #[serde(default)]
    pub unclean_leader_epoch: Option<u64>,
    /// A reassignment in progress (KIP-455): replicas being added (in `replicas`, not yet
    /// caught up) and replicas to remove once every target replica is in the ISR. The
    /// target is `replicas` minus `removing_replicas`, the original `replicas` minus
    /// `adding_replicas`.
    #[serde(default)]
    pub adding_replicas: Vec<BrokerId>,
    #[serde(default)]
    pub removing_replicas: Vec<BrokerId>,
}

impl PartitionState {
    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment in progress moves to (else the replicas).
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        without(&self.replicas, &self.removing_replicas)
    }

    /// The replicas before the reassignment in progress began (else the replicas).
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        without(&self.replicas, &self.adding_replicas)
    }
}

/// `list` in its order, without the members of `remove`.
pub fn without(list: &[BrokerId], remove: &[BrokerId]) -> Vec<BrokerId> {
    list.iter()
        .copied()
        .filter(|b| !remove.contains(b))
        .collect()
}

/// A partition's replica set as a reassignment changes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSet {
    pub replicas: Vec<BrokerId>,
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub topic_id: String,
    /// Configuration overrides (Kafka names); see [`crate::controller::config`] for defaults.
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionState>,
}

impl Topic {
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .first()
            .map_or(0, |p| p.target_replicas().len())
    }
}

/// A new leader / ISR for one partition, valid only if the partition epoch is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    pub topic: String,
    pub partition: u32,
    pub expected_partition_epoch: u64,
    pub leader: Option<BrokerId>,
    pub leader_epoch: u64,
    pub isr: Vec<BrokerId>,
    #[serde(default)]
    pub elr: Vec<BrokerId>,
    /// The new leader was elected uncleanly (it may lack committed records).
    #[serde(default)]
    pub unclean: bool,
    /// A new replica set (a reassignment starts, is cancelled or completes); `None`
    /// keeps the replicas.
    #[serde(default)]
    pub replicas: Option<ReplicaSet>,
}

/// The whole cluster metadata: what every node's replica of the log holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<BrokerId, Broker>,
    pub topics: BTreeMap<String, Topic>,
    /// Consumer groups as their coordinator last persisted them (stable points: a
    /// completed generation, or empty).
    #[serde(default)]
    pub groups: BTreeMap<String, GroupDescription>,
    /// Committed offsets: group -> topic -> partition -> offset.
    #[serde(default)]
    pub offsets: BTreeMap<String, GroupOffsets>,
    /// The first producer id not yet handed out in a block.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Transactional ids as their coordinator last persisted them.
    #[serde(default)]
    pub transactions: BTreeMap<String, TxnDescription>,
    /// SASL/SCRAM users: name -> one credential per mechanism (salted hashes only).
    #[serde(default)]
    pub users: BTreeMap<String, Vec<ScramCredential>>,
    /// ACLs (Kafka's model), each once.
    #[serde(default)]
    pub acls: std::collections::BTreeSet<rill_common::acl::AclBinding>,
}

/// One group's committed offsets: topic -> partition -> offset.
pub type GroupOffsets = BTreeMap<String, BTreeMap<u32, CommittedOffset>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: u64,
    pub metadata: String,
    #[serde(default)]
    pub leader_epoch: Option<i32>,
}

pub use rill_common::group::OffsetCommit;
use rill_common::scram::ScramCredential;
use rill_common::transaction::{TxnDescription, TxnState};

/// An entry of the metadata log. Each carries a decision already taken by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    InitCluster {
        cluster_id: String,
    },
    /// A broker (re)starts: new epoch, alive, and offline partitions whose ISR holds it
    /// come back with it as leader (`changes`).
    RegisterBroker {
        broker_id: BrokerId,
        addr: String,
        #[serde(default)]
        listeners: AdvertisedListeners,
        #[serde(default)]
        store: StoreInfo,
        changes: Vec<PartitionChange>,
    },
    FenceBroker {
        broker_id: BrokerId,
        broker_epoch: u64,
        changes: Vec<PartitionChange>,
    },
    UnfenceBroker {
        broker_id: BrokerId,
        broker_epoch: u64,
        changes: Vec<PartitionChange>,
    },
    CreateTopic {
        topic: Topic,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        partitions: Vec<PartitionState>,
    },
    AlterConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// An ISR change asked for by the partition leader (no longer written: kept so logs
    /// written before `AlterPartitions` still apply).
    AlterPartition {
        change: PartitionChange,
    },
    /// ISR changes of many partitions, each checked by the controller; each applies on
    /// its own (one whose partition moved on meanwhile is skipped).
    AlterPartitions {
        changes: Vec<PartitionChange>,
    },
    /// A group's coordinator persists it; a Dead group is removed with its offsets.
    PutGroup {
        group: GroupDescription,
    },
    /// Offsets committed by a group member (checked by the coordinator) or reset by an
    /// admin (checked by the controller: the group is empty).
    CommitOffsets {
        group_id: String,
        offsets: Vec<OffsetCommit>,
    },
    /// Offsets of many group members, checked by the coordinator and written as one
    /// entry (group commit), in the order they were committed.
    CommitOffsetsBatch {
        commits: Vec<(String, Vec<OffsetCommit>)>,
    },
    /// Committed offsets the coordinator deleted (OffsetDelete), checked against the
    /// group's subscriptions first.
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, u32)>,
    },
    /// A transaction coordinator persists a transactional id (a Dead one is removed).
    /// `offsets` are the transaction's, committed with it: they become the groups'
    /// committed offsets in the same entry that completes the transaction.
    PutTransaction {
        transaction: TxnDescription,
        #[serde(default)]
        offsets: Vec<(String, Vec<OffsetCommit>)>,
    },
    /// A block of `count` producer ids for one node; the outcome is its first id.
    AllocateProducerIds {
        count: u64,
    },
    /// Leader changes decided by a (preferred) leader election; stale ones are dropped.
    /// The outcome is how many were applied.
    ElectLeaders {
        changes: Vec<PartitionChange>,
    },
    /// Reassignments started, cancelled or completed (new replica sets, with the leader
    /// and ISR they imply); stale ones are dropped. The outcome is how many were applied.
    ReassignPartitions {
        changes: Vec<PartitionChange>,
    },
    /// A broker starts (or stops) being decommissioned.
    SetBrokerDraining {
        broker_id: BrokerId,
        draining: bool,
    },
    /// A user's credentials, checked by the controller: they replace its credentials of
    /// the same mechanisms.
    PutUser {
        name: String,
        credentials: Vec<ScramCredential>,
    },
    DeleteUser {
        name: String,
    },
    CreateAcls {
        bindings: Vec<rill_common::acl::AclBinding>,
    },
    /// The exact bindings the controller found for a delete's filters; the outcome is how
    /// many were there.
    DeleteAcls {
        bindings: Vec<rill_common::acl::AclBinding>,
    },
}

/// The result of applying one log entry (membership and blank entries give `Ok(None)`).
pub type CommandOutcome = Result<Option<u64>, MetadataError>;

impl MetadataState {
    pub fn alive_brokers(&self) -> Vec<BrokerId> {
        self.brokers
            .values()
            .filter(|b| b.is_alive())
            .map(|b| b.id)
            .collect()
    }

    /// Alive brokers that are not draining: where new replicas may go.
    pub fn placeable_brokers(&self) -> Vec<BrokerId> {
        self.brokers
            .values()
            .filter(|b| b.is_placeable())
            .map(|b| b.id)
            .collect()
    }

    /// Whether any partition is being reassigned.
    pub fn any_reassigning(&self) -> bool {
        self.topics
            .values()
            .any(|t| t.partitions.iter().any(PartitionState::is_reassigning))
    }

    /// The registered broker, whatever its incarnation.
    pub fn current_broker_any_epoch(&self, broker_id: BrokerId) -> Result<&Broker, MetadataError> {
        self.brokers.get(&broker_id).ok_or_else(|| {
            MetadataError::rejected(
                ErrorCode::BrokerNotAvailable,
                format!("broker {broker_id} is not registered"),
            )
        })
    }

    /// The broker, if `broker_epoch` is its current incarnation.
    pub fn current_broker(
        &self,
        broker_id: BrokerId,
        broker_epoch: u64,
    ) -> Result<&Broker, MetadataError> {
        let broker = self.brokers.get(&broker_id).ok_or_else(|| {
            MetadataError::rejected(
                ErrorCode::BrokerNotAvailable,
                format!("broker {broker_id} is not registered"),
            )
        })?;
        if broker.epoch != broker_epoch {
            return Err(MetadataError::rejected(
                ErrorCode::StaleBrokerEpoch,
                format!(
                    "broker {broker_id} epoch {broker_epoch} is not the current {}",
                    broker.epoch
                ),
            ));
        }
        Ok(broker)
    }

    /// A state with alive brokers `ids` (epoch 10 x id) and nothing else, for tests.
    #[cfg(test)]
    pub(crate) fn with_brokers(ids: &[BrokerId]) -> Self {
        let mut state = Self::default();
        for id in ids {
            state.brokers.insert(
                *id,
                Broker {
                    id: *id,
                    addr: format!("b{id}:1"),
                    listeners: Default::default(),
                    epoch: id * 10,
                    fenced: false,
                    store: StoreInfo {
                        store_id: format!("store-{id}"),
                        clean_shutdown: true,
                        acks_before_fsync: false,
                    },
                    draining: false,
                },
            );
        }
        state
    }

    /// The partitions whose offsets for `group_id` wait in an undecided or committing
    /// transaction (KIP-447: a consumer asking for stable offsets waits for them).
    pub fn pending_transactional_offsets(
        &self,
        group_id: &str,
    ) -> std::collections::BTreeSet<(String, u32)> {
        self.transactions
            .values()
            .filter(|t| matches!(t.state, TxnState::Ongoing | TxnState::PrepareCommit))
            .filter_map(|t| t.offsets.get(group_id))
            .flatten()
            .map(|o| (o.topic.clone(), o.partition))
            .collect()
    }

    /// The transaction the coordinator is running (open or deciding) that producer
    /// `producer_id` writes to `topic`-`partition` in, if any: the coordinator ends it,
    /// so it is not a hanging transaction for an admin to abort.
    pub fn coordinated_transaction(
        &self,
        producer_id: i64,
        topic: &str,
        partition: u32,
    ) -> Option<&TxnDescription> {
        self.transactions.values().find(|t| {
            let ours = t.producer.producer_id == producer_id
                || t.marker_producer
                    .is_some_and(|m| m.producer_id == producer_id);
            let running = t.state == TxnState::Ongoing || t.state.is_preparing();
            ours && running
                && t.partitions
                    .iter()
                    .any(|(tp, p)| tp == topic && *p == partition)
        })
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Option<&PartitionState> {
        self.topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
    }

    /// Applies one command written at `log_index`. On success returns the value the
    /// command produces (a broker epoch for a registration), else the rejection.
    pub fn apply(&mut self, command: MetadataCommand, log_index: u64) -> CommandOutcome {
        match command {
            MetadataCommand::InitCluster { cluster_id } => {
                self.cluster_id.get_or_insert(cluster_id);
                Ok(None)
            }
            MetadataCommand::RegisterBroker {
                broker_id,
                addr,
                listeners,
                store,
                changes,
            } => {
                let draining = self.brokers.get(&broker_id).is_some_and(|b| b.draining);
                self.brokers.insert(
                    broker_id,
                    Broker {
                        id: broker_id,
                        addr,
                        listeners,
                        epoch: log_index,
                        fenced: false,
                        store,
                        draining,
                    },
                );
                for change in changes {
                    self.apply_partition_change(change);
                }
                Ok(Some(log_index))
            }
            MetadataCommand::FenceBroker {
                broker_id,
                broker_epoch,
                changes,
            } => self.set_fenced(broker_id, broker_epoch, true, changes),
            MetadataCommand::UnfenceBroker {
                broker_id,
                broker_epoch,
                changes,
            } => self.set_fenced(broker_id, broker_epoch, false, changes),
            MetadataCommand::CreateTopic { topic } => {
                if self.topics.contains_key(&topic.name) {
                    return Err(MetadataError::rejected(
                        ErrorCode::TopicAlreadyExists,
                        format!("topic '{}' already exists", topic.name),
                    ));
                }
                self.topics.insert(topic.name.clone(), topic);
                Ok(None)
            }
            MetadataCommand::DeleteTopic { name } => {
                self.topics
                    .remove(&name)
                    .ok_or_else(|| unknown_topic(&name))?;
                Ok(None)
            }
            MetadataCommand::CreatePartitions { name, partitions } => {
                let topic = self
                    .topics
                    .get_mut(&name)
                    .ok_or_else(|| unknown_topic(&name))?;
                let expected_first = topic.partitions.len() as u32;
                if partitions.first().map(|p| p.partition) != Some(expected_first) {
                    return Err(MetadataError::rejected(
                        ErrorCode::InvalidPartitions,
                        format!("topic '{name}' changed concurrently; retry"),
                    ));
                }
                topic.partitions.extend(partitions);
                Ok(None)
            }
            MetadataCommand::AlterPartition { change } => {
                let at = (change.topic.clone(), change.partition);
                if self.apply_partition_change(change) {
                    Ok(self.partition(&at.0, at.1).map(|p| p.partition_epoch))
                } else {
                    Err(MetadataError::rejected(
                        ErrorCode::InvalidUpdateVersion,
                        format!("{}-{} changed concurrently; retry", at.0, at.1),
                    ))
                }
            }
            MetadataCommand::AlterPartitions { changes } => {
                for change in changes {
                    let at = (change.topic.clone(), change.partition);
                    if !self.apply_partition_change(change) {
                        tracing::debug!(topic = %at.0, partition = at.1, "ISR change skipped: the partition moved on");
                    }
                }
                Ok(None)
            }
            MetadataCommand::PutGroup { group } => {
                if group.state == GroupState::Dead {
                    self.groups.remove(&group.group_id);
                    self.offsets.remove(&group.group_id);
                } else {
                    self.groups.insert(group.group_id.clone(), group);
                }
                Ok(None)
            }
            MetadataCommand::CommitOffsets { group_id, offsets } => {
                self.commit_offsets(group_id, offsets);
                Ok(None)
            }
            MetadataCommand::CommitOffsetsBatch { commits } => {
                for (group_id, offsets) in commits {
                    self.commit_offsets(group_id, offsets);
                }
                Ok(None)
            }
            MetadataCommand::DeleteOffsets {
                group_id,
                partitions,
            } => {
                if let Some(committed) = self.offsets.get_mut(&group_id) {
                    for (topic, partition) in partitions {
                        if let Some(ps) = committed.get_mut(&topic) {
                            ps.remove(&partition);
                            if ps.is_empty() {
                                committed.remove(&topic);
                            }
                        }
                    }
                    if committed.is_empty() {
                        self.offsets.remove(&group_id);
                    }
                }
                Ok(None)
            }
            MetadataCommand::PutTransaction {
                transaction,
                offsets,
            } => {
                for (group_id, offsets) in offsets {
                    self.commit_offsets(group_id, offsets);
                }
                if transaction.state == TxnState::Dead {
                    self.transactions.remove(&transaction.transactional_id);
                } else {
                    self.transactions
                        .insert(transaction.transactional_id.clone(), transaction);
                }
                Ok(None)
            }
            MetadataCommand::AllocateProducerIds { count } => {
                let start = self.next_producer_id;
                self.next_producer_id = start.saturating_add(count.min(i64::MAX as u64) as i64);
                Ok(Some(start as u64))
            }
            MetadataCommand::PutUser { name, credentials } => {
                let stored = self.users.entry(name).or_default();
                stored.retain(|old| credentials.iter().all(|new| new.mechanism != old.mechanism));
                stored.extend(credentials);
                stored.sort_by_key(|c| c.mechanism);
                Ok(None)
            }
            MetadataCommand::DeleteUser { name } => {
                self.users.remove(&name);
                Ok(None)
            }
            MetadataCommand::CreateAcls { bindings } => {
                self.acls.extend(bindings);
                Ok(None)
            }
            MetadataCommand::DeleteAcls { bindings } => {
                let deleted = bindings.iter().filter(|b| self.acls.remove(*b)).count();
                Ok(Some(deleted as u64))
            }
            MetadataCommand::SetBrokerDraining {
                broker_id,
                draining,
            } => {
                let broker = self.brokers.get_mut(&broker_id).ok_or_else(|| {
                    MetadataError::rejected(
                        ErrorCode::BrokerNotAvailable,
                        format!("broker {broker_id} is not registered"),
                    )
                })?;
                broker.draining = draining;
                Ok(None)
            }
            MetadataCommand::ElectLeaders { changes }
            | MetadataCommand::ReassignPartitions { changes } => {
                let applied = changes
                    .into_iter()
                    .filter(|c| self.apply_partition_change(c.clone()))
                    .count();
                Ok(Some(applied as u64))
            }
            MetadataCommand::AlterConfigs { name, configs } => {
                let topic = self
                    .topics
                    .get_mut(&name)
                    .ok_or_else(|| unknown_topic(&name))?;
                topic.configs = configs;
                Ok(None)
            }
        }
    }

    fn set_fenced(
        &mut self,
        broker_id: BrokerId,
        broker_epoch: u64,
        fenced: bool,
        changes: Vec<PartitionChange>,
    ) -> CommandOutcome {
        self.current_broker(broker_id, broker_epoch)?;
        let Some(broker) = self.brokers.get_mut(&broker_id) else {
            return Ok(None);
        };
        broker.fenced = fenced;
        for change in changes {
            self.apply_partition_change(change);
        }
        Ok(None)
    }

    /// Applies a change whose partition epoch still matches; a stale one is dropped (the
    /// controller re-derives it from the newer state on its next pass).
    fn commit_offsets(&mut self, group_id: String, offsets: Vec<OffsetCommit>) {
        let committed = self.offsets.entry(group_id).or_default();
        for o in offsets {
            committed.entry(o.topic).or_default().insert(
                o.partition,
                CommittedOffset {
                    offset: o.offset,
                    metadata: o.metadata,
                    leader_epoch: o.leader_epoch,
                },
            );
        }
    }

    pub(crate) fn apply_partition_change(&mut self, change: PartitionChange) -> bool {
        let Some(partition) = self
            .topics
            .get_mut(&change.topic)
            .and_then(|t| t.partitions.get_mut(change.partition as usize))
        else {
            return false;
        };
        if partition.partition_epoch != change.expected_partition_epoch {
            return false;
        }
        partition.leader = change.leader;
        partition.leader_epoch = change.leader_epoch;
        partition.isr = change.isr;
        partition.elr = change.elr;
        if let Some(set) = change.replicas {
            partition.replicas = set.replicas;
            partition.adding_replicas = set.adding;
            partition.removing_replicas = set.removing;
        }
        if change.unclean {
            partition.unclean_leader_epoch = Some(change.leader_epoch);
        }
        partition.partition_epoch += 1;
        true
    }
}

fn unknown_topic(name: &str) -> MetadataError {
    MetadataError::rejected(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

#[cfg(test)]
mod transaction_tests {
    use std::collections::BTreeSet;

    use rill_common::transaction::ProducerIdAndEpoch;

    use super::*;

    fn txn(id: &str, state: TxnState, group: &str, partitions: &[u32]) -> TxnDescription {
        let offsets = partitions
            .iter()
            .map(|p| OffsetCommit {
                topic: "in".into(),
                partition: *p,
                offset: 10,
                metadata: String::new(),
                leader_epoch: None,
            })
            .collect();
        TxnDescription {
            transactional_id: id.into(),
            producer: ProducerIdAndEpoch {
                producer_id: 1,
                epoch: 0,
            },
            previous_producer: None,
            state,
            timeout_ms: 60_000,
            started_ms: Some(0),
            updated_ms: 0,
            partitions: BTreeSet::new(),
            offsets: BTreeMap::from([(group.to_string(), offsets)]),
            marker_producer: None,
        }
    }

    #[test]
    fn offsets_of_open_and_committing_transactions_are_unstable_until_they_complete() {
        let mut state = MetadataState::default();
        for (id, s, parts) in [
            ("a", TxnState::Ongoing, vec![0]),
            ("b", TxnState::PrepareCommit, vec![1]),
            ("c", TxnState::PrepareAbort, vec![2]),
        ] {
            let put = MetadataCommand::PutTransaction {
                transaction: txn(id, s, "g", &parts),
                offsets: Vec::new(),
            };
            assert!(state.apply(put, 1).is_ok());
        }
        let unstable = state.pending_transactional_offsets("g");
        let expected: BTreeSet<(String, u32)> =
            [("in".to_string(), 0), ("in".to_string(), 1)].into();
        assert_eq!(
            unstable, expected,
            "an aborting transaction commits nothing"
        );
        assert!(state.pending_transactional_offsets("other").is_empty());
    }
}
