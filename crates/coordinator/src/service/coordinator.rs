use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill_common::ErrorCode;
use rill_metadata::{ControllerRequest, MetadataNode, MetadataState, OffsetCommit};
use tokio::sync::{oneshot, Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::commit_batch::CommitBatcher;
use super::{metrics, term_to_load};
use crate::error::CoordinatorError;
use crate::group::{Group, GroupConfig, Output};
use crate::types::{
    GroupDescription, GroupState, JoinRequest, JoinResponse, MemberAssignment, SyncRequest,
};

/// How long a SyncGroup waits for the leader's assignment at most.
const SYNC_WAIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(100);
/// The longest a heartbeat is held open (`heartbeat_wait`).
const MAX_HEARTBEAT_WAIT: Duration = Duration::from_secs(5);

type Waiters<T> = HashMap<(String, String), oneshot::Sender<Result<T, ErrorCode>>>;

pub struct GroupCoordinator {
    metadata: Arc<MetadataNode>,
    config: GroupConfig,
    inner: Mutex<Inner>,
    /// Checked offset commits, written through the log in batches.
    commits: CommitBatcher,
}

#[derive(Default)]
struct Inner {
    /// The controller term the groups were loaded in; `None` until loaded.
    term: Option<u64>,
    groups: HashMap<String, Group>,
    joins: Waiters<JoinResponse>,
    syncs: Waiters<MemberAssignment>,
    partition_counts: BTreeMap<String, u32>,
    /// Per group, the heartbeats held open (`heartbeat_wait`), woken when the group moves.
    heartbeat_wakers: HashMap<String, Arc<Notify>>,
}

impl Inner {
    /// The group a member names in a heartbeat or leave: an unknown group means the
    /// member is unknown too (Kafka answers UNKNOWN_MEMBER_ID).
    fn member_group(&mut self, group_id: &str) -> Result<&mut Group, ErrorCode> {
        self.groups
            .get_mut(group_id)
            .ok_or(ErrorCode::UnknownMemberId)
    }

    /// Whether a member may commit offsets for the group now (its generation, or no
    /// member at all for a group nobody is in; a group not known yet accepts the latter).
    fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        match self.groups.get(group_id) {
            Some(group) => group.check_commit(member_id, instance_id, generation),
            None if generation < 0 && member_id.is_empty() => Ok(()),
            None => Err(ErrorCode::UnknownMemberId),
        }
    }
}

fn partition_counts(state: &MetadataState) -> BTreeMap<String, u32> {
    state
        .topics
        .values()
        .map(|t| (t.name.clone(), t.partitions.len() as u32))
        .collect()
}

impl GroupCoordinator {
    pub fn new(metadata: Arc<MetadataNode>, config: GroupConfig) -> Self {
        Self {
            metadata,
            config,
            inner: Mutex::default(),
            commits: CommitBatcher::default(),
        }
    }

    /// The coordinator's node id and address (the active controller).
    /// `listener`: the client gRPC listener the asker came through (its address on it).
    pub fn find(&self, listener: Option<&str>) -> Result<(u64, String), CoordinatorError> {
        let (id, addr) = self.metadata.known_leader().ok_or_else(|| {
            CoordinatorError::new(
                ErrorCode::CoordinatorNotAvailable,
                "no active controller is known",
            )
        })?;
        let addr = match self.metadata.state().brokers.get(&id) {
            Some(broker) => broker.grpc_addr(listener).to_string(),
            None => addr,
        };
        Ok((id, addr))
    }

    /// Fails unless this node is the active controller; on the first request of a new
    /// term, reloads every group from the metadata log.
    async fn ensure_coordinator(&self, inner: &mut Inner) -> Result<(), CoordinatorError> {
        let (term, state) = match term_to_load(&self.metadata, inner.term).await {
            Ok(None) => return Ok(()),
            Ok(Some(new_term)) => new_term,
            Err(e) => {
                abandon(inner);
                return Err(e);
            }
        };
        abandon(inner);
        let now = Instant::now();
        inner.groups = state
            .groups
            .values()
            .map(|d| (d.group_id.clone(), Group::restore(d, now)))
            .collect();
        inner.partition_counts = partition_counts(&state);
        inner.term = Some(term);
        info!(
            term,
            groups = inner.groups.len(),
            "group coordinator loaded its groups"
        );
        Ok(())
    }

    /// JoinGroup, answered when the rebalance completes. A new member (empty
    /// `member_id`) is given an id made from its client id;
    /// `CoordinatorError::MemberIdRequired` carries it when the member must join again
    /// with it (KIP-394).
    pub async fn join(
        &self,
        group_id: &str,
        mut req: JoinRequest,
    ) -> Result<JoinResponse, CoordinatorError> {
        check_group_id(group_id)?;
        let wait = req.rebalance_timeout + Duration::from_secs(5);
        if req.member_id.is_empty() && req.new_member_id.is_empty() {
            req.new_member_id = new_member_id(&req.client_id);
        }
        let new_member_id = req.new_member_id.clone();
        let waiter = if req.member_id.is_empty() {
            req.new_member_id.clone()
        } else {
            req.member_id.clone()
        };
        let rx = {
            let mut inner = self.inner.lock().await;
            self.ensure_coordinator(&mut inner).await?;
            let (tx, rx) = oneshot::channel();
            inner.joins.insert((group_id.to_string(), waiter), tx);
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            if group.state() == GroupState::Dead {
                *group = Group::new(group_id);
            }
            let outputs = group.join(Instant::now(), &self.config, req);
            self.dispatch(&mut inner, group_id, outputs).await;
            rx
        };
        match await_answer(rx, wait).await {
            Err(e) if e.code() == ErrorCode::MemberIdRequired => {
                Err(CoordinatorError::MemberIdRequired {
                    member_id: new_member_id,
                })
            }
            answer => answer,
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        req: SyncRequest,
    ) -> Result<MemberAssignment, CoordinatorError> {
        check_group_id(group_id)?;
        let rx = {
            let mut inner = self.inner.lock().await;
            self.ensure_coordinator(&mut inner).await?;
            let (tx, rx) = oneshot::channel();
            inner
                .syncs
                .insert((group_id.to_string(), req.member_id.clone()), tx);
            let Some(group) = inner.groups.get_mut(group_id) else {
                inner.syncs.remove(&(group_id.to_string(), req.member_id));
                return Err(ErrorCode::UnknownMemberId.into());
            };
            let outputs = group.sync(Instant::now(), req);
            self.dispatch(&mut inner, group_id, outputs).await;
            rx
        };
        await_answer(rx, SYNC_WAIT).await
    }

    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        self.heartbeat_wait(group_id, member_id, instance_id, generation, Duration::ZERO)
            .await
    }

    /// A heartbeat held open for up to `wait` while the member's generation stays
    /// stable: answered early (REBALANCE_IN_PROGRESS) when the group starts rebalancing,
    /// so a member learns of a join at once instead of at its next heartbeat. Rill's own
    /// client asks for it; Kafka's Heartbeat is the plain `heartbeat` (wait zero).
    pub async fn heartbeat_wait(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        wait: Duration,
    ) -> Result<(), CoordinatorError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_HEARTBEAT_WAIT);
        loop {
            let woken = {
                let mut inner = self.inner.lock().await;
                self.ensure_coordinator(&mut inner).await?;
                let group = inner.member_group(group_id)?;
                group.heartbeat(Instant::now(), member_id, instance_id, generation)?;
                if tokio::time::Instant::now() >= deadline {
                    return Ok(());
                }
                // Made under the lock `dispatch` wakes under: no wake-up is missed.
                let waker = inner
                    .heartbeat_wakers
                    .entry(group_id.to_string())
                    .or_default();
                waker.clone().notified_owned()
            };
            // Woken: check the group again. A waker left without waiters is dropped by
            // the group's next `dispatch` (or when the coordinator moves).
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(());
            }
        }
    }

    pub async fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let group = inner.member_group(group_id)?;
        let outputs = group.leave(Instant::now(), member_id, instance_id)?;
        self.dispatch(&mut inner, group_id, outputs).await;
        Ok(())
    }

    /// KIP-447: a transactional offset commit names the member and generation it
    /// consumed in; a zombie of an older generation is refused as a plain commit is.
    pub async fn check_member_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        check_group_id(group_id)?;
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        Ok(inner.check_commit(group_id, member_id, instance_id, generation)?)
    }

    /// Checks the member and generation, then writes the offsets through the log.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), CoordinatorError> {
        check_group_id(group_id)?;
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        inner.check_commit(group_id, member_id, instance_id, generation)?;
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
        // The check is done; the write joins the next batch without holding the lock.
        drop(inner);
        let metadata = self.metadata.clone();
        self.commits
            .commit((group_id.to_string(), offsets), move |commits| {
                let metadata = metadata.clone();
                async move {
                    metadata
                        .execute_as_leader(ControllerRequest::CommitOffsetsBatch { commits })
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            CoordinatorError::new(ErrorCode::NotCoordinator, e.to_string())
                        })
                }
            })
            .await
    }

    /// The groups as they are now (mid-rebalance included), for DescribeGroups: `None`
    /// for a group this coordinator does not know.
    pub async fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, Option<GroupDescription>)>, CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        Ok(group_ids
            .iter()
            .map(|id| (id.clone(), inner.groups.get(id).map(Group::describe)))
            .collect())
    }

    /// Every group this coordinator knows, as it is now (ListGroups). Groups that only
    /// committed offsets (assign mode) are listed as Empty.
    pub async fn list_groups(&self) -> Result<Vec<GroupDescription>, CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let mut groups: Vec<GroupDescription> =
            inner.groups.values().map(Group::describe).collect();
        let state = self.metadata.state();
        for id in state.offsets.keys() {
            if !inner.groups.contains_key(id) {
                groups.push(Group::new(id).describe());
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// DeleteGroups: each group goes with its committed offsets if nobody is in it
    /// (NON_EMPTY_GROUP otherwise); a group that neither has members nor committed
    /// offsets is GROUP_ID_NOT_FOUND.
    pub async fn delete_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, Result<(), ErrorCode>)>, CoordinatorError> {
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let mut results = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            let result = self.delete_group(&mut inner, group_id).await;
            if let Err(code) = result {
                info!(group_id, %code, "group not deleted");
            }
            results.push((group_id.clone(), result));
        }
        Ok(results)
    }

    async fn delete_group(&self, inner: &mut Inner, group_id: &str) -> Result<(), ErrorCode> {
        check_group_id(group_id).map_err(|e| e.code())?;
        let has_offsets = self.metadata.state().offsets.contains_key(group_id);
        let mut group = match inner.groups.get(group_id) {
            Some(group) if group.state() != GroupState::Dead => group.clone(),
            _ if has_offsets => Group::new(group_id),
            _ => return Err(ErrorCode::GroupIdNotFound),
        };
        group.delete()?;
        let request = ControllerRequest::PutGroup {
            group: group.describe(),
        };
        self.metadata
            .execute_as_leader(request)
            .await
            .map_err(|e| {
                warn!(group_id, "cannot delete the group: {e}");
                ErrorCode::NotCoordinator
            })?;
        inner.groups.remove(group_id);
        info!(group_id, "group deleted with its offsets");
        Ok(())
    }

    /// OffsetDelete: removes the group's committed offsets of `partitions`, except those
    /// of topics its members consume (GROUP_SUBSCRIBED_TO_TOPIC per partition). A group
    /// with members outside the consumer protocol keeps them all (NON_EMPTY_GROUP).
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, u32)],
    ) -> Result<Vec<((String, u32), Result<(), ErrorCode>)>, CoordinatorError> {
        check_group_id(group_id)?;
        let mut inner = self.inner.lock().await;
        self.ensure_coordinator(&mut inner).await?;
        let state = self.metadata.state();
        let in_use = match inner.groups.get(group_id) {
            Some(group) if group.state() != GroupState::Dead => group.topics_in_use(),
            _ if state.offsets.contains_key(group_id) => Some(BTreeSet::new()),
            _ => return Err(ErrorCode::GroupIdNotFound.into()),
        };
        let Some(in_use) = in_use else {
            return Err(CoordinatorError::new(
                ErrorCode::NonEmptyGroup,
                format!("group {group_id} has members; its offsets stay"),
            ));
        };
        let results: Vec<_> = partitions
            .iter()
            .map(|(topic, partition)| {
                let result = if in_use.contains(topic) {
                    Err(ErrorCode::GroupSubscribedToTopic)
                } else if state.partition(topic, *partition).is_none() {
                    Err(ErrorCode::UnknownTopicOrPartition)
                } else {
                    Ok(())
                };
                ((topic.clone(), *partition), result)
            })
            .collect();
        let deleted: Vec<(String, u32)> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(tp, _)| tp.clone())
            .collect();
        if !deleted.is_empty() {
            let request = ControllerRequest::DeleteOffsets {
                group_id: group_id.to_string(),
                partitions: deleted,
            };
            self.metadata
                .execute_as_leader(request)
                .await
                .map_err(|e| CoordinatorError::new(ErrorCode::NotCoordinator, e.to_string()))?;
        }
        Ok(results)
    }

    /// The group's partitions whose offsets a transaction is committing (or may commit):
    /// a consumer that asks for stable offsets (OffsetFetch `require_stable`, KIP-447)
    /// gets UNSTABLE_OFFSET_COMMIT for them and asks again, so it never starts from an
    /// offset a commit is about to move.
    pub fn unstable_offsets(&self, group_id: &str) -> BTreeSet<(String, u32)> {
        self.metadata
            .state()
            .pending_transactional_offsets(group_id)
    }

    /// Committed offsets of the group (of `partitions`, or all).
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, u32)],
    ) -> Result<Vec<OffsetCommit>, CoordinatorError> {
        {
            let mut inner = self.inner.lock().await;
            self.ensure_coordinator(&mut inner).await?;
        }
        let state = self.metadata.state();
        let Some(committed) = state.offsets.get(group_id) else {
            return Ok(Vec::new());
        };
        Ok(committed
            .iter()
            .flat_map(|(topic, ps)| ps.iter().map(move |(p, c)| (topic, *p, c)))
            .filter(|(topic, p, _)| {
                partitions.is_empty() || partitions.iter().any(|(t, q)| t == *topic && q == p)
            })
            .map(|(topic, partition, c)| OffsetCommit {
                topic: topic.clone(),
                partition,
                offset: c.offset,
                metadata: c.metadata.clone(),
                leader_epoch: c.leader_epoch,
            })
            .collect())
    }

    /// Ticks every group's clock and tells groups about partition count changes, until
    /// cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
            let mut inner = self.inner.lock().await;
            if !self.metadata.controller_info().is_leader || inner.term.is_none() {
                if inner.term.is_some() {
                    abandon(&mut inner);
                }
                continue;
            }
            let counts = partition_counts(&self.metadata.state());
            let changed: BTreeSet<String> = counts
                .iter()
                .filter(|(t, n)| inner.partition_counts.get(*t).is_some_and(|old| old != *n))
                .map(|(t, _)| t.clone())
                .collect();
            inner.partition_counts = counts;
            let now = Instant::now();
            let ids: Vec<String> = inner.groups.keys().cloned().collect();
            for id in ids {
                let Some(group) = inner.groups.get_mut(&id) else {
                    continue;
                };
                let mut outputs = group.tick(now);
                if !changed.is_empty() {
                    outputs.extend(group.topics_changed(now, &changed));
                }
                if !outputs.is_empty() {
                    self.dispatch(&mut inner, &id, outputs).await;
                }
            }
            metrics::groups(inner.groups.values());
        }
        let mut inner = self.inner.lock().await;
        abandon(&mut inner);
    }

    /// Acts on a group's outputs: persists first (so an answered generation survives a
    /// coordinator failover), then answers the waiting calls.
    async fn dispatch(&self, inner: &mut Inner, group_id: &str, outputs: Vec<Output>) {
        if outputs.contains(&Output::Persist) {
            if let Some(group) = inner.groups.get(group_id) {
                let request = ControllerRequest::PutGroup {
                    group: group.describe(),
                };
                if let Err(e) = self.metadata.execute_as_leader(request).await {
                    warn!(
                        group_id,
                        "cannot persist the group, giving up coordination: {e}"
                    );
                    abandon(inner);
                    return;
                }
            }
        }
        if let Some(waker) = inner.heartbeat_wakers.get(group_id) {
            waker.notify_waiters();
            // No waiter left (they timed out or were cancelled): drop it.
            if Arc::strong_count(waker) == 1 {
                inner.heartbeat_wakers.remove(group_id);
            }
        }
        for output in outputs {
            match output {
                Output::Join { member_id, result } => {
                    if let Some(tx) = inner.joins.remove(&(group_id.to_string(), member_id)) {
                        let _ = tx.send(result);
                    }
                }
                Output::Sync { member_id, result } => {
                    if let Some(tx) = inner.syncs.remove(&(group_id.to_string(), member_id)) {
                        let _ = tx.send(result);
                    }
                }
                Output::Rebalanced {
                    latency,
                    partitions_moved,
                } => metrics::rebalanced(group_id, latency, partitions_moved),
                Output::Persist => {}
            }
        }
    }
}

/// Drops the in-memory groups (another node coordinates now, or will): waiting calls
/// learn NOT_COORDINATOR and find the new coordinator.
fn abandon(inner: &mut Inner) {
    for (_, tx) in inner.joins.drain() {
        let _ = tx.send(Err(ErrorCode::NotCoordinator));
    }
    for (_, tx) in inner.syncs.drain() {
        let _ = tx.send(Err(ErrorCode::NotCoordinator));
    }
    for (_, waker) in inner.heartbeat_wakers.drain() {
        waker.notify_waiters();
    }
    inner.groups.clear();
    inner.term = None;
}

/// A new member's id: its client id (or "member") and a random suffix, as Kafka makes it.
fn new_member_id(client_id: &str) -> String {
    let prefix = if client_id.is_empty() {
        "member"
    } else {
        client_id
    };
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn check_group_id(group_id: &str) -> Result<(), CoordinatorError> {
    if group_id.is_empty() || group_id.len() > 255 {
        return Err(CoordinatorError::new(
            ErrorCode::InvalidGroupId,
            "a group id is 1 to 255 characters",
        ));
    }
    Ok(())
}

async fn await_answer<T>(
    rx: oneshot::Receiver<Result<T, ErrorCode>>,
    wait: Duration,
) -> Result<T, CoordinatorError> {
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(result)) => result.map_err(CoordinatorError::from),
        // Replaced by a newer call of the same member, or the coordinator moved.
        Ok(Err(_)) | Err(_) => Err(ErrorCode::RebalanceInProgress.into()),
    }
}
