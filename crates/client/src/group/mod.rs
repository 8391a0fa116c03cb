//! The consumer as a group member: `subscribe`, then `poll` drives everything Kafka's
//! consumer does in poll: rebalances (eager: give up everything, then join; cooperative:
//! keep fetching what it owns while the rebalance runs in the background, give up only
//! what moves, and rejoin so it can move), rebalance callbacks, committed offsets as
//! starting positions, auto-commit. Heartbeats run in a background task that only raises
//! flags; the callbacks run inside `poll`.

mod link;
pub(crate) use link::offsets_to_pb;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rill_common::ErrorCode;
use rill_coordinator::assignor::{self, RebalanceProtocol};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::link::{CoordinatorLink, JoinParams, MemberIdentity};
use self::rebalance::{join_and_sync, protocols, Rebalanced};
use crate::metadata::ClusterMetadata;
use crate::{AdminClient, Bootstrap, ClientError, Consumer, ConsumerConfig, ConsumerRecord};

pub type TopicPartition = (String, u32);

/// A group member as a transaction's offset commit names it (Kafka's
/// `ConsumerGroupMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
}

#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    pub group_id: String,
    /// `group.instance.id`: a static member keeps its assignment across a restart
    /// within the session timeout.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`, also the rebalance timeout members get to rejoin.
    pub max_poll_interval: Duration,
    /// Assignor names, preferred first: `range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`.
    pub assignors: Vec<String>,
    /// Commit positions in the background this often (and before giving partitions up);
    /// `None` to commit only with `commit_sync` / `commit_async`.
    pub auto_commit_interval: Option<Duration>,
    pub fetch: ConsumerConfig,
}

impl Default for GroupConsumerConfig {
    fn default() -> Self {
        Self {
            group_id: String::new(),
            group_instance_id: None,
            client_id: "rill".into(),
            session_timeout: Duration::from_secs(10),
            // The coordinator holds each heartbeat this long and answers it as soon as
            // the group starts rebalancing, so members learn of a join at once.
            heartbeat_interval: Duration::from_millis(250),
            max_poll_interval: Duration::from_secs(60),
            assignors: vec!["cooperative-sticky".into(), "range".into()],
            auto_commit_interval: Some(Duration::from_secs(5)),
            fetch: ConsumerConfig::default(),
        }
    }
}

/// Rebalance callbacks, called inside `poll`.
pub trait RebalanceListener: Send {
    fn on_assigned(&mut self, _partitions: &[TopicPartition]) {}
    /// The partitions are given up in order; offsets may still be committed.
    fn on_revoked(&mut self, _partitions: &[TopicPartition]) {}
    /// The member was dropped from the group (session expired, fenced): another member
    /// may own the partitions already, so nothing may be committed for them.
    fn on_lost(&mut self, _partitions: &[TopicPartition]) {}
}

/// Flags the heartbeat task raises for `poll`, and when `poll` last ran.
struct Signals {
    rejoin: AtomicBool,
    lost: AtomicBool,
    last_poll: std::sync::Mutex<Instant>,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            rejoin: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            last_poll: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl Signals {
    fn polled(&self) {
        *self.last_poll.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn since_poll(&self) -> Duration {
        self.last_poll
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

pub struct GroupConsumer {
    config: GroupConsumerConfig,
    fetcher: Consumer,
    metadata: ClusterMetadata,
    link: Arc<CoordinatorLink>,
    topics: Vec<String>,
    me: MemberIdentity,
    protocol: RebalanceProtocol,
    owned: BTreeSet<TopicPartition>,
    needs_join: bool,
    rebalance: Option<JoinHandle<Result<Rebalanced, ClientError>>>,
    heartbeat: Option<(CancellationToken, JoinHandle<()>)>,
    signals: Arc<Signals>,
    listener: Option<Box<dyn RebalanceListener>>,
    last_commit: Instant,
}

impl GroupConsumer {
    pub fn new(bootstrap: Bootstrap, config: GroupConsumerConfig) -> Result<Self, ClientError> {
        if config.group_id.is_empty() {
            return Err(ClientError::InvalidArgument("the group id is empty".into()));
        }
        let first = config
            .assignors
            .first()
            .and_then(|name| assignor::by_name(name))
            .ok_or_else(|| {
                ClientError::InvalidArgument(format!(
                    "unknown assignor in {:?} (range, roundrobin, sticky, cooperative-sticky)",
                    config.assignors
                ))
            })?;
        if let Some(unknown) = config
            .assignors
            .iter()
            .find(|a| assignor::by_name(a).is_none())
        {
            return Err(ClientError::InvalidArgument(format!(
                "unknown assignor {unknown}"
            )));
        }
        Ok(Self {
            fetcher: Consumer::new(bootstrap.clone(), config.fetch.clone()),
            metadata: ClusterMetadata::new(AdminClient::new(bootstrap.clone())),
            link: Arc::new(CoordinatorLink::new(bootstrap, config.group_id.clone())),
            topics: Vec::new(),
            me: MemberIdentity {
                member_id: String::new(),
                instance_id: config.group_instance_id.clone(),
                generation: -1,
            },
            protocol: first.rebalance_protocol(),
            owned: BTreeSet::new(),
            needs_join: false,
            rebalance: None,
            heartbeat: None,
            signals: Arc::default(),
            listener: None,
            last_commit: Instant::now(),
            config,
        })
    }

    /// Subscribes to `topics` (replacing any earlier subscription); the next `poll`
    /// joins the group.
    pub fn subscribe(&mut self, topics: &[&str], listener: Option<Box<dyn RebalanceListener>>) {
        self.topics = topics.iter().map(|t| t.to_string()).collect();
        self.listener = listener;
        self.needs_join = true;
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    pub fn generation(&self) -> i32 {
        self.me.generation
    }

    pub fn member_id(&self) -> &str {
        &self.me.member_id
    }

    /// This member's group, id and generation, for `send_offsets_to_transaction`: the
    /// coordinator refuses offsets of a member that is no longer in the generation.
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: self.config.group_id.clone(),
            member_id: self.me.member_id.clone(),
            group_instance_id: self.me.instance_id.clone(),
            generation: self.me.generation,
        }
    }

    /// The next offset to read of every owned partition (after the records returned).
    pub fn positions(&self) -> Vec<(TopicPartition, u64)> {
        self.positions_of(&self.owned)
    }

    /// Moves the position of an owned partition (the next poll reads from `offset`).
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) {
        if self.owned.contains(tp) {
            self.fetcher.seek(tp, offset);
        }
    }

    /// Moves the positions of owned partitions back to the group's committed offsets,
    /// or to where `auto_offset_reset` starts a partition without one (e.g. after an
    /// aborted transaction, so that its input is read again).
    pub async fn seek_to_committed(&mut self) -> Result<(), ClientError> {
        let owned: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        if owned.is_empty() {
            return Ok(());
        }
        let committed: BTreeMap<TopicPartition, u64> =
            self.link.committed(&owned).await?.into_iter().collect();
        for tp in &owned {
            match committed.get(tp) {
                Some(offset) => self.fetcher.seek(tp, *offset),
                None => self.fetcher.reset_position(tp),
            }
        }
        Ok(())
    }

    /// Takes part in the group as needed, then returns the next records of the owned
    /// partitions (possibly none).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.signals.polled();
        self.maybe_rebalance().await?;
        self.maybe_auto_commit().await;
        if self.owned.is_empty() {
            tokio::time::sleep(self.config.fetch.max_wait.min(Duration::from_millis(200))).await;
            return Ok(Vec::new());
        }
        self.fetcher.poll().await
    }

    /// Commits the position of every owned partition and waits for the answer.
    pub async fn commit_sync(&mut self) -> Result<(), ClientError> {
        let offsets = self.positions_of(&self.owned);
        if offsets.is_empty() {
            return Ok(());
        }
        self.link.commit(&self.me, &offsets).await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits the given next offsets (e.g. one past the last record processed) and
    /// waits for the answer.
    pub async fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.link.commit(&self.me, offsets).await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits the positions of every owned partition in the background; a failure is
    /// only logged (a later commit covers it).
    pub fn commit_async(&mut self) {
        let offsets = self.positions_of(&self.owned);
        if offsets.is_empty() {
            return;
        }
        let (link, me) = (self.link.clone(), self.me.clone());
        tokio::spawn(async move {
            if let Err(e) = link.commit(&me, &offsets).await {
                tracing::debug!("async commit failed: {e}");
            }
        });
        self.last_commit = Instant::now();
    }

    /// Commits (with auto-commit), leaves the group (a static member stays, so its
    /// restart keeps the assignment) and stops the heartbeat.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.config.auto_commit_interval.is_some() {
            let _ = self.commit_sync().await;
        }
        self.stop_heartbeat();
        if let Some(rebalance) = self.rebalance.take() {
            rebalance.abort();
        }
        if self.me.instance_id.is_none() && !self.me.member_id.is_empty() {
            match self.link.leave(&self.me).await {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::UnknownMemberId => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn positions_of(&self, partitions: &BTreeSet<TopicPartition>) -> Vec<(TopicPartition, u64)> {
        partitions
            .iter()
            .filter_map(|tp| self.fetcher.position(tp).map(|o| (tp.clone(), o)))
            .collect()
    }

    async fn maybe_auto_commit(&mut self) {
        let Some(every) = self.config.auto_commit_interval else {
            return;
        };
        if self.last_commit.elapsed() >= every && self.rebalance.is_none() {
            self.commit_async();
        }
    }

    async fn maybe_rebalance(&mut self) -> Result<(), ClientError> {
        if self.signals.lost.swap(false, Ordering::SeqCst) {
            let lost: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
            if !lost.is_empty() {
                tracing::warn!(group = %self.config.group_id, "lost {} partition(s): no longer a member", lost.len());
                if let Some(l) = self.listener.as_mut() {
                    l.on_lost(&lost);
                }
            }
            self.fetcher.assign(Vec::new());
            self.me.generation = -1;
            self.needs_join = true;
        }
        if self.signals.rejoin.swap(false, Ordering::SeqCst) {
            self.needs_join = true;
        }
        if self.needs_join && self.rebalance.is_none() {
            self.needs_join = false;
            self.start_rebalance().await;
        }
        let Some(task) = self.rebalance.as_ref() else {
            return Ok(());
        };
        // Eager members own nothing while rebalancing and wait; cooperative ones keep
        // fetching and pick the result up when it is there.
        if !self.owned.is_empty() && !task.is_finished() {
            return Ok(());
        }
        let Some(task) = self.rebalance.take() else {
            return Ok(());
        };
        let rebalanced = task.await.map_err(|e| ClientError::Server {
            code: ErrorCode::UnknownServerError,
            message: format!("rebalance task failed: {e}"),
        })?;
        match rebalanced {
            Ok(rebalanced) => self.apply(rebalanced).await,
            // The coordinator was away for longer than a rebalance may take (a whole
            // cluster restarting): try again on the next poll, as Kafka's consumer does.
            Err(e) if e.is_retriable() => {
                tracing::warn!(group = %self.config.group_id, "rebalance did not complete, retrying: {e}");
                self.needs_join = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn start_rebalance(&mut self) {
        // Join and sync keep the session alive; a heartbeat of the old generation would
        // only read the new generation as this member being lost.
        self.stop_heartbeat();
        if self.protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let revoked = std::mem::take(&mut self.owned);
            self.give_up(&revoked).await;
            self.fetcher.assign(Vec::new());
        }
        let params = JoinParams {
            member_id: self.me.member_id.clone(),
            instance_id: self.me.instance_id.clone(),
            client_id: self.config.client_id.clone(),
            session_timeout: self.config.session_timeout,
            rebalance_timeout: self.config.max_poll_interval,
            protocols: protocols(
                &self.config.assignors,
                &self.topics,
                self.owned.iter().cloned().collect(),
                self.me.generation,
            ),
        };
        tracing::info!(group = %self.config.group_id, member = %self.me.member_id, owned = self.owned.len(), "joining the group");
        let (link, metadata) = (self.link.clone(), self.metadata.clone());
        self.rebalance = Some(tokio::spawn(join_and_sync(link, metadata, params)));
    }

    /// Revokes partitions: commit their positions (with auto-commit), then tell the
    /// listener.
    async fn give_up(&mut self, revoked: &BTreeSet<TopicPartition>) {
        if revoked.is_empty() {
            return;
        }
        if self.config.auto_commit_interval.is_some() {
            let offsets = self.positions_of(revoked);
            if let Err(e) = self.link.commit(&self.me, &offsets).await {
                tracing::debug!("commit before revoking failed: {e}");
            }
        }
        if let Some(l) = self.listener.as_mut() {
            l.on_revoked(&revoked.iter().cloned().collect::<Vec<_>>());
        }
    }

    async fn apply(&mut self, rebalanced: Rebalanced) -> Result<(), ClientError> {
        self.me = rebalanced.me;
        if let Some(a) = assignor::by_name(&rebalanced.protocol) {
            self.protocol = a.rebalance_protocol();
        }
        let new: BTreeSet<TopicPartition> = assignor::partitions_of(&rebalanced.assignment)
            .into_iter()
            .collect();
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        tracing::info!(
            group = %self.config.group_id,
            member = %self.me.member_id,
            generation = self.me.generation,
            assigned = ?new,
            revoked = ?revoked,
            "joined the group"
        );
        if !revoked.is_empty() {
            self.give_up(&revoked).await;
            // Cooperative: what this member gave up goes to its new owner in the next
            // rebalance, which this member's rejoin starts.
            if self.protocol == RebalanceProtocol::Cooperative {
                self.needs_join = true;
            }
        }
        self.owned = new;
        self.fetcher.assign(self.owned.iter().cloned().collect());
        if !added.is_empty() {
            let committed: BTreeMap<TopicPartition, u64> =
                self.link.committed(&added).await?.into_iter().collect();
            for tp in &added {
                if let Some(offset) = committed.get(tp) {
                    self.fetcher.seek(tp, *offset);
                }
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_assigned(&added);
            }
        }
        self.start_heartbeat();
        Ok(())
    }

    fn stop_heartbeat(&mut self) {
        if let Some((cancel, task)) = self.heartbeat.take() {
            cancel.cancel();
            task.abort();
        }
    }

    fn start_heartbeat(&mut self) {
        self.stop_heartbeat();
        let cancel = CancellationToken::new();
        let (link, me, signals) = (self.link.clone(), self.me.clone(), self.signals.clone());
        let (interval, max_poll) = (
            self.config.heartbeat_interval,
            self.config.max_poll_interval,
        );
        let task = tokio::spawn(heartbeat_loop(
            link,
            me,
            signals,
            (interval, max_poll),
            cancel.clone(),
        ));
        self.heartbeat = Some((cancel, task));
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.stop_heartbeat();
        if let Some(rebalance) = self.rebalance.take() {
            rebalance.abort();
        }
    }
}

/// Heartbeats until cancelled; raises `rejoin` when the group rebalances and `lost` when
/// the coordinator no longer knows this member's generation. An application that stops
/// calling `poll` for `max.poll.interval.ms` is stuck: the member leaves the group so
/// its partitions go to others (and rejoins when `poll` runs again).
async fn heartbeat_loop(
    link: Arc<CoordinatorLink>,
    me: MemberIdentity,
    signals: Arc<Signals>,
    (interval, max_poll_interval): (Duration, Duration),
    cancel: CancellationToken,
) {
    // Each heartbeat is held open by the coordinator for up to `interval` and answered
    // early when the group starts rebalancing; one answered sooner (an error, or a
    // coordinator that does not hold it) is followed by a pause for the rest of it.
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        if signals.since_poll() > max_poll_interval {
            tracing::warn!(
                member = %me.member_id,
                "poll not called for longer than max.poll.interval.ms ({max_poll_interval:?}); leaving the group"
            );
            if let Err(e) = link.leave(&me).await {
                tracing::debug!("leaving after a poll timeout failed: {e}");
            }
            signals.lost.store(true, Ordering::SeqCst);
            signals.rejoin.store(true, Ordering::SeqCst);
            return;
        }
        let sent = tokio::time::Instant::now();
        let answer = link.heartbeat(&me, interval).await;
        pause = interval.saturating_sub(sent.elapsed());
        match answer {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::RebalanceInProgress => {
                signals.rejoin.store(true, Ordering::SeqCst);
            }
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::UnknownMemberId
                        | ErrorCode::IllegalGeneration
                        | ErrorCode::FencedInstanceId
                ) =>
            {
                signals.lost.store(true, Ordering::SeqCst);
                signals.rejoin.store(true, Ordering::SeqCst);
                return;
            }
            // The coordinator moved or is unreachable: the link finds it again.
            Err(e) => tracing::debug!("heartbeat failed: {e}"),
        }
    }
}
