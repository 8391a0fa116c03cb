//! The consumer without groups: assign partitions, seek, poll. Each poll sends one
//! Fetch per leader in parallel and returns what came back, in offset order per
//! partition.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use rill_common::transaction::IsolationLevel;
use rill_common::ErrorCode;
use rill_proto::v1 as pb;

use crate::fetched::{records_of, AbortedTxn};
use crate::metadata::ClusterMetadata;
use crate::{AdminClient, Bootstrap, ClientError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub max_wait: Duration,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub partition_max_bytes: u32,
    /// Where to start a partition with no position, or whose position left the log.
    pub auto_offset_reset: OffsetReset,
    /// read_committed (the default) skips aborted transactions and waits for open ones;
    /// read_latest reads up to the leader's log end, records that may later be
    /// truncated away.
    pub isolation: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
            auto_offset_reset: OffsetReset::Latest,
            isolation: IsolationLevel::ReadCommitted,
        }
    }
}

pub type TopicPartition = (String, u32);

#[derive(Default)]
struct FetchOutcome {
    /// Per partition its records and where its next fetch starts.
    records: Vec<(TopicPartition, Vec<ConsumerRecord>, Option<u64>)>,
    /// Topics whose leadership moved: refresh their metadata.
    stale_topics: Vec<String>,
    out_of_range: Vec<TopicPartition>,
}

impl FetchOutcome {
    fn has_records(&self) -> bool {
        self.records
            .iter()
            .any(|(_, records, _)| !records.is_empty())
    }
}

pub struct Consumer {
    config: ConsumerConfig,
    metadata: ClusterMetadata,
    positions: BTreeMap<TopicPartition, Option<u64>>,
}

impl Consumer {
    pub fn new(bootstrap: Bootstrap, config: ConsumerConfig) -> Self {
        Self {
            config,
            metadata: ClusterMetadata::new(AdminClient::new(bootstrap)),
            positions: BTreeMap::new(),
        }
    }

    /// Every partition of `topic`.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<TopicPartition>, ClientError> {
        let count = self.metadata.partitions(topic).await?.len() as u32;
        Ok((0..count).map(|p| (topic.to_string(), p)).collect())
    }

    /// Replaces the assignment; new partitions start per `auto_offset_reset`.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        let old = std::mem::take(&mut self.positions);
        for tp in partitions {
            let position = old.get(&tp).copied().flatten();
            self.positions.insert(tp, position);
        }
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) {
        self.positions.insert(tp.clone(), Some(offset));
    }

    /// Forgets the position of an assigned partition: the next poll starts it per
    /// `auto_offset_reset`.
    pub fn reset_position(&mut self, tp: &TopicPartition) {
        if let Some(position) = self.positions.get_mut(tp) {
            *position = None;
        }
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.positions.get(tp).copied().flatten()
    }

    pub async fn seek_to(
        &mut self,
        tp: &TopicPartition,
        reset: OffsetReset,
    ) -> Result<(), ClientError> {
        let offset = self.list_offset(tp, reset).await?;
        self.seek(tp, offset);
        Ok(())
    }

    /// The earliest offset or the high watermark of a partition.
    pub async fn list_offset(
        &self,
        tp: &TopicPartition,
        which: OffsetReset,
    ) -> Result<u64, ClientError> {
        let timestamp = match which {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
        };
        let mut attempts = 0;
        loop {
            let result = async {
                let (_, mut client) = self.metadata.leader(&tp.0, tp.1).await?;
                client
                    .list_offsets(pb::ListOffsetsRequest {
                        topic: tp.0.clone(),
                        partition: tp.1,
                        timestamp,
                        isolation_level: pb_isolation(self.config.isolation).into(),
                    })
                    .await
                    .map(|r| r.into_inner().offset.unwrap_or(0))
                    .map_err(|s| ClientError::from_status(&s))
            }
            .await;
            match result {
                Err(e) if e.is_retriable() && attempts < 20 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = self.metadata.refresh(&tp.0).await;
                }
                other => return other,
            }
        }
    }

    /// Returns the next records of the assigned partitions (possibly none after
    /// `max_wait`) and advances the positions. A first round of fetches does not wait, so
    /// a leader with nothing new never holds up records from the others; only when
    /// nothing at all came back does a second round long-poll.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        let records = self.fetch_round(Duration::ZERO).await?;
        if !records.is_empty() {
            return Ok(records);
        }
        self.fetch_round(self.config.max_wait).await
    }

    async fn fetch_round(
        &mut self,
        max_wait: Duration,
    ) -> Result<Vec<ConsumerRecord>, ClientError> {
        let reset = self.config.auto_offset_reset;
        let unpositioned: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in unpositioned {
            match self.seek_to(&tp, reset).await {
                Ok(()) => {}
                // Its leader is away (a failover, a whole cluster restarting): the
                // partition is positioned on a later poll, as Kafka's consumer does.
                Err(e) if e.is_retriable() => {
                    tracing::debug!(topic = %tp.0, partition = tp.1, "cannot position yet: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        let mut by_leader: HashMap<u64, Vec<(TopicPartition, u64)>> = HashMap::new();
        let mut leaderless = Vec::new();
        for (tp, position) in &self.positions {
            let Some(offset) = *position else {
                continue;
            };
            match self.metadata.leader(&tp.0, tp.1).await {
                Ok((leader, _)) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), offset)),
                Err(e) if e.is_retriable() => leaderless.push(tp.0.clone()),
                Err(e) => return Err(e),
            }
        }
        let mut fetches: FuturesUnordered<_> = by_leader
            .into_iter()
            .map(|(leader, parts)| {
                let topics: Vec<String> = parts.iter().map(|((t, _), _)| t.clone()).collect();
                self.fetch_from(leader, parts, max_wait)
                    .map(move |response| (response, topics))
            })
            .collect();
        // A waiting round ends as soon as one leader has records (with whatever others
        // have answered by then): a leader with nothing new must not hold back records
        // another one returned. The waits given up lose nothing; positions stay.
        let mut responses = Vec::new();
        while let Some(answered) = fetches.next().await {
            let has_records = matches!(&answered.0, Ok(o) if o.has_records());
            responses.push(answered);
            if has_records && !max_wait.is_zero() {
                while let Some(Some(answered)) = fetches.next().now_or_never() {
                    responses.push(answered);
                }
                break;
            }
        }
        drop(fetches);
        let mut records = Vec::new();
        let mut refresh = leaderless;
        for (response, topics) in responses {
            let outcome = match response {
                Ok(r) => r,
                // The leader is gone or busy: look its partitions' leaders up again.
                Err(e) if e.is_retriable() => {
                    refresh.extend(topics);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            refresh.extend(outcome.stale_topics);
            for tp in outcome.out_of_range {
                // Reset per auto_offset_reset on the next poll.
                self.positions.insert(tp, None);
            }
            for (tp, mut got, next) in outcome.records {
                if let (Some(next), Some(Some(position))) = (next, self.positions.get_mut(&tp)) {
                    *position = (*position).max(next);
                }
                records.append(&mut got);
            }
        }
        refresh.sort();
        refresh.dedup();
        for topic in refresh {
            let _ = self.metadata.refresh(&topic).await;
        }
        Ok(records)
    }

    /// One Fetch to one leader. Returns records per partition and the topics whose
    /// metadata went stale (leadership moved).
    async fn fetch_from(
        &self,
        leader: u64,
        parts: Vec<(TopicPartition, u64)>,
        max_wait: Duration,
    ) -> Result<FetchOutcome, ClientError> {
        let mut client = self.metadata.broker(leader)?;
        let request = pb::FetchRequest {
            replica_id: -1,
            max_wait_ms: max_wait.as_millis() as u32,
            min_bytes: self.config.min_bytes,
            max_bytes: self.config.max_bytes,
            isolation_level: pb_isolation(self.config.isolation).into(),
            partitions: parts
                .iter()
                .map(|((topic, partition), offset)| pb::FetchPartition {
                    topic: topic.clone(),
                    partition: *partition,
                    fetch_offset: *offset,
                    partition_max_bytes: self.config.partition_max_bytes,
                    current_leader_epoch: None,
                    last_fetched_epoch: None,
                })
                .collect(),
        };
        let response = client
            .fetch(request)
            .await
            .map_err(|s| ClientError::from_status(&s))?
            .into_inner();
        let mut outcome = FetchOutcome::default();
        for (p, (tp, offset)) in response.partitions.into_iter().zip(parts) {
            if !p.error_code.is_empty() {
                let code = p
                    .error_code
                    .parse()
                    .unwrap_or(ErrorCode::UnknownServerError);
                match code {
                    ErrorCode::OffsetOutOfRange => {
                        outcome.out_of_range.push(tp);
                        continue;
                    }
                    c if c.is_retriable() || c == ErrorCode::FencedLeaderEpoch => {
                        outcome.stale_topics.push(tp.0.clone());
                        continue;
                    }
                    c => {
                        return Err(ClientError::Server {
                            code: c,
                            message: p.error_message,
                        })
                    }
                }
            }
            let aborted: Vec<AbortedTxn> = p
                .aborted_transactions
                .iter()
                .map(|a| AbortedTxn {
                    producer_id: a.producer_id,
                    first_offset: a.first_offset,
                })
                .collect();
            let (read, next) =
                records_of(&p.records, offset, &aborted).map_err(|e| ClientError::Server {
                    code: ErrorCode::CorruptMessage,
                    message: e.to_string(),
                })?;
            let records = read
                .into_iter()
                .map(|r| ConsumerRecord {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    offset: r.offset,
                    key: r.key,
                    value: r.value,
                    timestamp_ms: r.timestamp_ms,
                })
                .collect();
            outcome.records.push((tp, records, next));
        }
        Ok(outcome)
    }
}

pub(crate) fn pb_isolation(level: IsolationLevel) -> pb::IsolationLevel {
    match level {
        IsolationLevel::ReadCommitted => pb::IsolationLevel::ReadCommitted,
        IsolationLevel::ReadUncommitted => pb::IsolationLevel::ReadUncommitted,
        IsolationLevel::ReadLatest => pb::IsolationLevel::ReadLatest,
    }
}
