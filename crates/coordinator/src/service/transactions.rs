//! The transaction coordinator at work on the active controller: every transactional
//! id's state machine in memory (loaded from the metadata log at each new term), each
//! change persisted through the log before it is answered, markers written to the
//! partitions' leaders by one task per deciding transaction (retried until every leader
//! has it), and a clock that aborts transactions past their timeout. Other nodes answer
//! NOT_COORDINATOR, as for groups: both coordinators live on the active controller.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rill_common::group::{OffsetCommit, TopicPartition};
use rill_common::transaction::{ProducerIdAndEpoch, TxnDescription, TxnMarker};
use rill_common::ErrorCode;
use rill_metadata::{ControllerRequest, MetadataNode};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{metrics, term_to_load, GroupCoordinator};
use crate::error::CoordinatorError;
use crate::transaction::{Markers, Transaction, TxnConfig, TxnOutput};

const TICK: Duration = Duration::from_millis(100);
const MARKER_BACKOFF_MIN: Duration = Duration::from_millis(50);
const MARKER_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the coordinator needs from the node it runs on.
#[tonic::async_trait]
pub trait TxnBackends: Send + Sync + 'static {
    /// A producer id never handed out before.
    async fn next_producer_id(&self) -> Result<i64, ErrorCode>;
    /// Writes `marker` to `partition` through its leader; Ok once every ISR member has
    /// it. UNKNOWN_TOPIC_OR_PARTITION: the partition is gone (nothing to mark).
    async fn write_marker(
        &self,
        partition: &TopicPartition,
        marker: TxnMarker,
    ) -> Result<(), ErrorCode>;
}

/// How an EndTxn moves the producer epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndTxnVersion {
    /// KIP-890 (the Rust client, Kafka's EndTxn v5+): every end bumps the epoch.
    BumpEpoch,
    /// Before KIP-890 (librdkafka, Kafka's EndTxn v0-4): the epoch stays.
    KeepEpoch,
}

pub struct TxnCoordinator {
    metadata: Arc<MetadataNode>,
    groups: Arc<GroupCoordinator>,
    backends: Arc<dyn TxnBackends>,
    config: TxnConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The controller term the transactions were loaded in; `None` until loaded.
    term: Option<u64>,
    /// Cancels this term's marker tasks when the term ends.
    term_cancel: CancellationToken,
    txns: HashMap<String, Transaction>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn check_transactional_id(transactional_id: &str) -> Result<(), CoordinatorError> {
    if transactional_id.is_empty() || transactional_id.len() > 255 {
        return Err(CoordinatorError::new(
            ErrorCode::InvalidRequest,
            "a transactional id is 1 to 255 characters",
        ));
    }
    Ok(())
}

impl TxnCoordinator {
    pub fn new(
        metadata: Arc<MetadataNode>,
        groups: Arc<GroupCoordinator>,
        backends: Arc<dyn TxnBackends>,
        config: TxnConfig,
    ) -> Self {
        Self {
            metadata,
            groups,
            backends,
            config,
            inner: Mutex::default(),
        }
    }

    /// The coordinator's node id and address (the active controller, as for groups).
    pub fn find(&self, listener: Option<&str>) -> Result<(u64, String), CoordinatorError> {
        self.groups.find(listener)
    }

    /// Fails unless this node is the active controller; on the first call of a new term,
    /// loads every transaction from the metadata log and resumes the markers of those
    /// that were deciding.
    async fn ensure_coordinator(
        self: &Arc<Self>,
        inner: &mut Inner,
    ) -> Result<(), CoordinatorError> {
        let (term, state) = match term_to_load(&self.metadata, inner.term).await {
            Ok(None) => return Ok(()),
            Ok(Some(new_term)) => new_term,
            Err(e) => {
                abandon(inner);
                return Err(e);
            }
        };
        abandon(inner);
        inner.txns = state
            .transactions
            .values()
            .map(|d| (d.transactional_id.clone(), Transaction::restore(d.clone())))
            .collect();
        inner.term = Some(term);
        inner.term_cancel = CancellationToken::new();
        let deciding: Vec<(String, Markers)> = inner
            .txns
            .iter()
            .filter_map(|(id, t)| t.pending_markers().map(|m| (id.clone(), m)))
            .collect();
        info!(
            term,
            transactions = inner.txns.len(),
            deciding = deciding.len(),
            "transaction coordinator loaded its transactions"
        );
        for (id, markers) in deciding {
            self.spawn_markers(inner, id, markers);
        }
        Ok(())
    }

    /// InitProducerId with a transactional id: a new id gets a producer id at epoch 0;
    /// a known one is bumped (fencing older producers), after its open transaction is
    /// aborted (CONCURRENT_TRANSACTIONS until then: the client retries).
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout: Duration,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, CoordinatorError> {
        check_transactional_id(transactional_id)?;
        if timeout.is_zero() || timeout > self.config.max_timeout {
            return Err(CoordinatorError::new(
                ErrorCode::InvalidTransactionTimeout,
                format!(
                    "transaction.timeout.ms must be 1..={} (transaction.max.timeout.ms)",
                    self.config.max_timeout.as_millis()
                ),
            ));
        }
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let mut out = Vec::new();
        let now = now_ms();
        let needs_fresh = inner
            .txns
            .get(transactional_id)
            .is_none_or(Transaction::needs_fresh_producer_id);
        let fresh =
            if needs_fresh {
                Some(self.backends.next_producer_id().await.map_err(|code| {
                    CoordinatorError::new(code, "no producer id could be allocated")
                })?)
            } else {
                None
            };
        let result = match (inner.txns.get_mut(transactional_id), fresh) {
            (Some(txn), fresh) => {
                txn.init_producer_id(now, &self.config, timeout, expected, fresh, &mut out)
            }
            (None, Some(producer_id)) => {
                let txn = Transaction::new(transactional_id, producer_id, timeout, now, &mut out);
                let producer = txn.producer();
                inner.txns.insert(transactional_id.to_string(), txn);
                Ok(producer)
            }
            (None, None) => Err(ErrorCode::CoordinatorNotAvailable),
        };
        self.dispatch(&mut inner, transactional_id, out, Vec::new())
            .await?;
        if let Ok(producer) = result {
            info!(
                transactional_id,
                producer_id = producer.producer_id,
                epoch = producer.epoch,
                "transactional producer initialised"
            );
        }
        result.map_err(CoordinatorError::from)
    }

    /// AddPartitionsToTxn: every partition must exist (UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn add_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), CoordinatorError> {
        check_transactional_id(transactional_id)?;
        let state = self.metadata.state();
        if let Some((topic, partition)) = partitions
            .iter()
            .find(|(t, p)| state.partition(t, *p).is_none())
        {
            return Err(CoordinatorError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{partition} does not exist"),
            ));
        }
        self.update(transactional_id, |txn, now, out| {
            txn.add_partitions(now, producer, partitions, out)
        })
        .await
    }

    /// AddOffsetsToTxn: offsets of `group_id` will be committed with the transaction.
    pub async fn add_offsets(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        group_id: &str,
    ) -> Result<(), CoordinatorError> {
        check_transactional_id(transactional_id)?;
        self.update(transactional_id, |txn, now, out| {
            txn.add_offsets(now, producer, group_id, out)
        })
        .await
    }

    /// TxnOffsetCommit: the member and generation are checked as for a plain commit
    /// (KIP-447), then the offsets wait in the transaction until it commits.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_offsets(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), CoordinatorError> {
        check_transactional_id(transactional_id)?;
        self.groups
            .check_member_commit(group_id, member_id, instance_id, generation)
            .await?;
        let state = self.metadata.state();
        if let Some(o) = offsets
            .iter()
            .find(|o| state.partition(&o.topic, o.partition).is_none())
        {
            return Err(CoordinatorError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{}-{} does not exist", o.topic, o.partition),
            ));
        }
        self.update(transactional_id, |txn, now, out| {
            txn.add_offset_commits(now, producer, group_id, offsets, out)
        })
        .await
    }

    /// EndTxn: answered once the decision is durable; markers follow. Returns the
    /// producer id and epoch the producer uses next.
    pub async fn end(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        commit: bool,
        version: EndTxnVersion,
    ) -> Result<ProducerIdAndEpoch, CoordinatorError> {
        check_transactional_id(transactional_id)?;
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let needs_fresh = match inner.txns.get(transactional_id) {
            Some(txn) => txn.needs_fresh_producer_id(),
            None => return Err(ErrorCode::InvalidProducerIdMapping.into()),
        };
        let fresh = if needs_fresh && version == EndTxnVersion::BumpEpoch {
            self.backends.next_producer_id().await.ok()
        } else {
            None
        };
        let Some(txn) = inner.txns.get_mut(transactional_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping.into());
        };
        let mut out = Vec::new();
        let now = now_ms();
        let result = match version {
            EndTxnVersion::BumpEpoch => txn.end(now, producer, commit, fresh, &mut out),
            EndTxnVersion::KeepEpoch => txn.end_keeping_epoch(now, producer, commit, &mut out),
        };
        self.dispatch(&mut inner, transactional_id, out, Vec::new())
            .await?;
        if result.is_ok() {
            tracing::debug!(transactional_id, commit, "transaction decided");
        }
        result.map_err(CoordinatorError::from)
    }

    /// A partition leader's check of a transaction's first write to a partition.
    pub async fn verify_partition(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let txn = inner
            .txns
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        Ok(txn.verify_partition(producer, partition)?)
    }

    /// The transactions named (`None` for an unknown id), as they are now.
    pub async fn describe(
        self: &Arc<Self>,
        transactional_ids: &[String],
    ) -> Result<Vec<(String, Option<TxnDescription>)>, CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        Ok(transactional_ids
            .iter()
            .map(|id| {
                let d = inner.txns.get(id).map(|t| t.describe().clone());
                (id.clone(), d)
            })
            .collect())
    }

    /// Every transactional id this coordinator knows, by id.
    pub async fn list(self: &Arc<Self>) -> Result<Vec<TxnDescription>, CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let mut all: Vec<TxnDescription> =
            inner.txns.values().map(|t| t.describe().clone()).collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(all)
    }

    /// Feeds one request to a known transaction and acts on what it says.
    async fn update(
        self: &Arc<Self>,
        transactional_id: &str,
        event: impl FnOnce(&mut Transaction, u64, &mut Vec<TxnOutput>) -> Result<(), ErrorCode>,
    ) -> Result<(), CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let txn = inner
            .txns
            .get_mut(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let mut out = Vec::new();
        let result = event(txn, now_ms(), &mut out);
        self.dispatch(&mut inner, transactional_id, out, Vec::new())
            .await?;
        result.map_err(CoordinatorError::from)
    }

    /// Ticks every transaction's clock (expired ones are aborted) and loads the
    /// transactions when this node becomes the active controller (so deciding ones
    /// finish without waiting for a client), until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
            let mut inner = self.inner.lock().await;
            if !self.metadata.controller_info().is_leader {
                if inner.term.is_some() {
                    abandon(&mut inner);
                }
                continue;
            }
            if self.ensure_coordinator(&mut inner).await.is_err() {
                continue;
            }
            let now = now_ms();
            let ids: Vec<String> = inner.txns.keys().cloned().collect();
            for id in ids {
                let mut out = Vec::new();
                if let Some(txn) = inner.txns.get_mut(&id) {
                    txn.tick(now, &mut out);
                }
                if !out.is_empty() {
                    info!(transactional_id = %id, "transaction timed out: aborting it");
                    metrics::transaction_expired();
                    if self
                        .dispatch(&mut inner, &id, out, Vec::new())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            metrics::transactions(inner.txns.values());
        }
        let mut inner = self.inner.lock().await;
        abandon(&mut inner);
    }

    /// Persists first (with `offsets` when a commit completes), then starts markers.
    async fn dispatch(
        self: &Arc<Self>,
        inner: &mut Inner,
        transactional_id: &str,
        outputs: Vec<TxnOutput>,
        offsets: Vec<(String, Vec<OffsetCommit>)>,
    ) -> Result<(), CoordinatorError> {
        if outputs.contains(&TxnOutput::Persist) {
            if let Some(txn) = inner.txns.get(transactional_id) {
                let request = ControllerRequest::PutTransaction {
                    transaction: txn.describe().clone(),
                    offsets,
                };
                if let Err(e) = self.metadata.execute_as_leader(request).await {
                    warn!(
                        transactional_id,
                        "cannot persist the transaction, giving up coordination: {e}"
                    );
                    abandon(inner);
                    return Err(CoordinatorError::new(
                        ErrorCode::NotCoordinator,
                        e.to_string(),
                    ));
                }
            }
        }
        for output in outputs {
            if let TxnOutput::WriteMarkers(markers) = output {
                self.spawn_markers(inner, transactional_id.to_string(), markers);
            }
        }
        Ok(())
    }

    /// Writes `markers` to every partition (retrying each until its leader has it),
    /// then completes the transaction; stops when this term ends.
    fn spawn_markers(self: &Arc<Self>, inner: &Inner, transactional_id: String, markers: Markers) {
        let Some(term) = inner.term else {
            return;
        };
        let cancel = inner.term_cancel.clone();
        let this = self.clone();
        let marker = TxnMarker {
            producer_id: markers.producer.producer_id,
            producer_epoch: markers.producer.epoch,
            commit: markers.commit,
            coordinator_epoch: i32::try_from(term).unwrap_or(i32::MAX),
        };
        tokio::spawn(async move {
            let mut pending: BTreeSet<TopicPartition> = markers.partitions.clone();
            let mut backoff = MARKER_BACKOFF_MIN;
            while !pending.is_empty() {
                let writes = pending
                    .iter()
                    .map(|tp| async { (tp.clone(), this.backends.write_marker(tp, marker).await) });
                let results = futures::future::join_all(writes).await;
                for (tp, result) in results {
                    match result {
                        Ok(()) => {
                            pending.remove(&tp);
                        }
                        Err(ErrorCode::UnknownTopicOrPartition) => {
                            warn!(transactional_id, topic = %tp.0, partition = tp.1,
                                "the partition is gone: no marker written");
                            pending.remove(&tp);
                        }
                        Err(code) => {
                            tracing::debug!(transactional_id, topic = %tp.0, partition = tp.1,
                                %code, "marker not written yet; retrying");
                        }
                    }
                }
                if pending.is_empty() {
                    break;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MARKER_BACKOFF_MAX);
            }
            this.complete(term, &transactional_id, markers).await;
        });
    }

    /// Every marker is written: the transaction completes (a commit makes its offsets
    /// visible in the same log entry).
    async fn complete(self: &Arc<Self>, term: u64, transactional_id: &str, markers: Markers) {
        let mut inner = self.inner.lock().await;
        if inner.term != Some(term) {
            return;
        }
        let Some(txn) = inner.txns.get_mut(transactional_id) else {
            return;
        };
        let mut out = Vec::new();
        if !txn.markers_written(now_ms(), markers.producer, &mut out) {
            return;
        }
        let offsets = if markers.commit {
            markers.offsets
        } else {
            Vec::new()
        };
        if self
            .dispatch(&mut inner, transactional_id, out, offsets)
            .await
            .is_ok()
        {
            metrics::transaction_completed(markers.commit);
            tracing::debug!(
                transactional_id,
                commit = markers.commit,
                "transaction complete"
            );
        }
    }
}

/// Drops the in-memory transactions and stops this term's marker tasks (another node
/// coordinates now, or will, and resumes them from the log).
fn abandon(inner: &mut Inner) {
    inner.term_cancel.cancel();
    inner.txns.clear();
    inner.term = None;
}
