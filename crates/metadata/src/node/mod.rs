//! One node's share of the metadata quorum: its Raft replica (voter or learner), the
//! forwarding of controller requests to the leader, and the background tasks (bootstrap,
//! broker registration and heartbeats, the active controller's liveness loop).

mod broker_lifecycle;
mod leader;
mod reassign;
mod voters;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, ServerState, SnapshotPolicy};
use rill_common::NodeId;
use rill_proto::v1::controller_service_client::ControllerServiceClient;
use rill_proto::v1::ForwardRequest;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::network::{ChannelPool, RaftNetworkFactoryImpl};
use crate::store::{SharedState, StateWatch};
use crate::types::{ControllerReply, ControllerRequest, ForwardedReply, Raft};
use crate::MetadataError;

/// Raft timing, in milliseconds.
#[derive(Debug, Clone)]
pub struct RaftTimings {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Default for RaftTimings {
    fn default() -> Self {
        // Larger than openraft's defaults: an fsync on a busy 2-core machine can take
        // longer than 150 ms, and needless elections cost more than slower detection.
        Self {
            heartbeat_ms: 100,
            election_min_ms: 400,
            election_max_ms: 800,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetadataNodeConfig {
    pub node_id: NodeId,
    /// The address other nodes and clients reach this node's gRPC listener at.
    pub advertise: String,
    /// The controllers (Raft voters) and their addresses.
    pub voters: BTreeMap<NodeId, String>,
    /// Directory of the metadata Raft's sled Db.
    pub data_dir: PathBuf,
    /// The metadata store's page cache (`metadata.cache.capacity.bytes`).
    pub cache_capacity_bytes: u64,
    pub raft: RaftTimings,
    pub broker_session_timeout: Duration,
    pub broker_heartbeat_interval: Duration,
    /// How long a controller request keeps retrying to find a leader before failing.
    pub request_timeout: Duration,
    /// How often the active controller moves leadership back to preferred replicas
    /// (`leader.imbalance.check.interval.seconds`); `None` when
    /// `auto.leader.rebalance.enable` is false.
    pub leader_rebalance_interval: Option<Duration>,
    /// This node's partition store, as the broker registers with it.
    pub store: crate::model::StoreInfo,
    /// The addresses advertised on this node's named Kafka and client gRPC listeners.
    pub listeners: crate::model::AdvertisedListeners,
    /// What this node's calls to other nodes carry (the cluster secret).
    pub node_auth: rill_proto::NodeAuth,
    /// How this node's channels to other nodes are opened (TLS with its certificate).
    pub transport: rill_proto::Transport,
}

/// Who leads the metadata quorum, as this node sees it.
#[derive(Debug, Clone)]
pub struct ControllerInfo {
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub last_applied: u64,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub is_leader: bool,
}

pub struct MetadataNode {
    config: MetadataNodeConfig,
    raft: Raft,
    state: StateWatch,
    channels: ChannelPool,
    leader: leader::LeaderState,
    committed_index: Arc<AtomicU64>,
    broker_epoch: watch::Sender<Option<u64>>,
    /// The broker's partition store fails (set by the node): heartbeats ask to be fenced.
    storage_failing: std::sync::atomic::AtomicBool,
}

impl MetadataNode {
    /// Opens the metadata store and starts the Raft replica. Serve
    /// [`crate::grpc::RaftServiceImpl`] before calling [`MetadataNode::spawn_tasks`].
    pub async fn start(config: MetadataNodeConfig) -> Result<Arc<Self>, MetadataError> {
        let (log_store, state_machine, state) =
            crate::store::open(&config.data_dir, config.cache_capacity_bytes)?;
        let raft_config = openraft::Config {
            cluster_name: "rill-metadata".to_string(),
            heartbeat_interval: config.raft.heartbeat_ms,
            election_timeout_min: config.raft.election_min_ms,
            election_timeout_max: config.raft.election_max_ms,
            install_snapshot_timeout: 2_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(2_000),
            max_in_snapshot_log_to_keep: 500,
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetadataError::Raft(e.to_string()))?;
        let committed_index = log_store.committed_index();
        let channels = ChannelPool::new(config.node_auth.clone(), config.transport.clone());
        let network = RaftNetworkFactoryImpl {
            channels: channels.clone(),
        };
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| MetadataError::Raft(e.to_string()))?;
        Ok(Arc::new(Self {
            config,
            raft,
            state,
            channels,
            leader: leader::LeaderState::default(),
            committed_index,
            broker_epoch: watch::channel(None).0,
            storage_failing: Default::default(),
        }))
    }

    /// The node's channels to other nodes (calls through them carry the cluster secret).
    pub fn channels(&self) -> &ChannelPool {
        &self.channels
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    pub fn is_voter(&self) -> bool {
        self.config.voters.contains_key(&self.config.node_id)
    }

    /// Starts the background tasks; each stops when `cancel` fires.
    pub fn spawn_tasks(self: &Arc<Self>, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().bootstrap(cancel.clone())),
            tokio::spawn(self.clone().broker_lifecycle(cancel.clone())),
            tokio::spawn(self.clone().controller_loop(cancel)),
        ]
    }

    /// Voters initialize the quorum on first start (identical calls on every pristine
    /// voter are safe); other nodes ask the controller to add them as learners.
    async fn bootstrap(self: Arc<Self>, cancel: CancellationToken) {
        if self.is_voter() {
            let members: BTreeMap<NodeId, BasicNode> = self
                .config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match self.raft.initialize(members).await {
                Ok(()) => info!("initialized the metadata quorum"),
                Err(e) => info!("metadata quorum already initialized ({e})"),
            }
            return;
        }
        let request = ControllerRequest::AddLearner {
            node_id: self.config.node_id,
            addr: self.config.advertise.clone(),
        };
        loop {
            match self.submit(request.clone()).await {
                Ok(_) => {
                    info!("following the metadata log as a learner");
                    return;
                }
                Err(e) => warn!("cannot join the metadata log as a learner yet: {e}"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// The metadata as of the last applied log entry.
    pub fn state(&self) -> SharedState {
        self.state.borrow().clone()
    }

    /// A watch that changes after every applied batch of metadata log entries.
    pub fn watch(&self) -> StateWatch {
        self.state.clone()
    }

    /// This node's broker epoch once it registered with the controller.
    pub fn broker_epoch(&self) -> Option<u64> {
        *self.broker_epoch.borrow()
    }

    /// A watch of [`Self::broker_epoch`].
    pub fn broker_epoch_watch(&self) -> watch::Receiver<Option<u64>> {
        self.broker_epoch.subscribe()
    }

    /// The broker's partition store fails (or works again): from the next heartbeat on,
    /// the controller keeps this broker fenced (or lets it back).
    pub fn set_storage_failing(&self, failing: bool) {
        self.storage_failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    /// Why this node's Raft replica stopped for good (its metadata store failed), if it
    /// did.
    pub fn raft_fatal(&self) -> Option<String> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(fatal) => Some(fatal.to_string()),
        }
    }

    pub fn controller_info(&self) -> ControllerInfo {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        ControllerInfo {
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            last_applied: metrics.last_applied.map_or(0, |l| l.index),
            last_log_index: metrics.last_log_index.unwrap_or(0),
            committed_index: self.committed_index.load(Ordering::Relaxed),
            is_leader: metrics.state == ServerState::Leader,
        }
    }

    /// Ready: a leader is known, this node is a member of the metadata log, it has
    /// applied the cluster's initialization, and its broker is registered.
    pub fn is_ready(&self) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        let member = metrics
            .membership_config
            .membership()
            .get_node(&self.config.node_id)
            .is_some();
        metrics.current_leader.is_some()
            && member
            && self.state().cluster_id.is_some()
            && self.broker_epoch().is_some()
    }

    /// The metadata with every entry committed before this call applied (a linearizable
    /// read; only the leader can serve it).
    ///
    /// openraft's read index alone is not enough here: a leader restarted with its vote
    /// keeps its term without a new blank entry, and reads at the committed id it stored,
    /// which is not fsynced and may lag entries it acknowledged before the restart (a
    /// transaction coordinator that loaded such a state lost a partition of an open
    /// transaction, and its abort left a record of it visible). Every entry a leader
    /// acknowledged is in its own log, so this waits for the leader's whole log to apply.
    pub async fn linearizable_state(&self) -> Result<SharedState, MetadataError> {
        let refused = |e: String| {
            tracing::debug!("linearizable read refused: {e}");
            MetadataError::NotController {
                leader: self.known_leader().filter(|(id, _)| *id != self.node_id()),
            }
        };
        self.raft
            .ensure_linearizable()
            .await
            .map_err(|e| refused(e.to_string()))?;
        let last_log_index = self.raft.metrics().borrow().last_log_index;
        if last_log_index.is_some() {
            self.raft
                .wait(Some(self.config.request_timeout))
                .applied_index_at_least(last_log_index, "the leader's whole log applied")
                .await
                .map_err(|e| refused(e.to_string()))?;
        }
        Ok(self.state())
    }

    /// The leader's id and address, if this node knows them.
    pub fn known_leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some((leader, node.addr))
    }

    /// Runs a controller request on the active controller, wherever it is: locally if
    /// this node leads, else forwarded to the leader (found from Raft, from a leader hint,
    /// or by asking each voter). Retries until `request_timeout`; when it returns, this
    /// node's replica has applied what the request wrote.
    pub async fn submit(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, MetadataError> {
        let deadline = Instant::now() + self.config.request_timeout;
        let voters: Vec<(NodeId, String)> = self.config.voters.clone().into_iter().collect();
        let mut next_voter = 0;
        let mut hint = None;
        let mut last_error: String;
        loop {
            let target = hint.take().or_else(|| self.known_leader()).or_else(|| {
                next_voter += 1;
                voters.get(next_voter % voters.len().max(1)).cloned()
            });
            let result = match &target {
                Some((id, _)) if *id == self.config.node_id => {
                    self.execute_as_leader(request.clone()).await
                }
                Some((_, addr)) => self.forward(addr, &request).await,
                None => Err(MetadataError::NotController { leader: None }),
            };
            match result {
                Ok(forwarded) => {
                    if let Some(index) = forwarded.log_index {
                        self.wait_applied(index, deadline).await;
                    }
                    return Ok(forwarded.reply);
                }
                Err(MetadataError::NotController { leader }) => {
                    last_error = format!("{target:?} is not the controller");
                    hint = leader.filter(|l| Some(l) != target.as_ref());
                }
                Err(MetadataError::NoQuorum(message)) => last_error = message,
                Err(other) => return Err(other),
            }
            if Instant::now() >= deadline {
                return Err(MetadataError::NoQuorum(last_error));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a request to another node's ControllerService.Forward. Transport failures
    /// come back as `NoQuorum` (retriable).
    async fn forward(
        &self,
        addr: &str,
        request: &ControllerRequest,
    ) -> Result<ForwardedReply, MetadataError> {
        let channel = self
            .channels
            .get(addr)
            .map_err(|e| MetadataError::NoQuorum(format!("bad controller address {addr}: {e}")))?;
        let data = serde_json::to_vec(request)?;
        let mut grpc_request = tonic::Request::new(ForwardRequest { data: data.into() });
        grpc_request.set_timeout(Duration::from_secs(5));
        let response = ControllerServiceClient::new(channel)
            .forward(grpc_request)
            .await
            .map_err(|s| {
                MetadataError::NoQuorum(format!("controller at {addr}: {}", s.message()))
            })?;
        serde_json::from_slice(&response.into_inner().data)?
    }

    /// Waits (best effort, until `deadline`) for this replica to apply `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) {
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        if let Err(e) = self
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read your writes")
            .await
        {
            warn!("replica has not applied log index {index} yet: {e}");
        }
    }

    /// Stops the Raft replica. Call after cancelling the tasks.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            warn!("raft shutdown: {e}");
        }
    }
}
