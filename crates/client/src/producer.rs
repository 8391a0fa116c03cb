//! The producer: per-partition batching, Kafka's partitioning (murmur2 for keyed
//! records, sticky partitions for the rest), acks, and retries of retriable errors with
//! a metadata refresh. An idempotent producer keeps up to `max_in_flight` batches per
//! partition in flight: their sequence numbers keep them in order (the leader appends a
//! partition's batches in sequence order however they arrive, and a retry resends the
//! same bytes). Any other producer keeps one, so retries never reorder its records.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rill_common::record::{Compression, RecordBatchBuilder};
use rill_common::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::in_flight::InFlight;
use crate::metadata::ClusterMetadata;
use crate::partitioner::partition_for_key;
use crate::send_batch::{send_batch, BatchTarget};
use crate::transactional::TxnShared;
use crate::{AdminClient, Bootstrap, ClientError};

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// -1 (all), 0 or 1.
    pub acks: i32,
    /// How long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// Bytes at which a batch is sent without waiting for `linger`.
    pub batch_size: usize,
    /// How long a record may take, retries included, before it fails.
    pub delivery_timeout: Duration,
    /// The broker's wait for acks=all.
    pub request_timeout: Duration,
    /// Records queued before `send` waits (the producer's buffer).
    pub buffer_records: usize,
    /// The idempotent producer (with acks=all only): a producer id and per-partition
    /// sequence numbers let the leader store a retried batch once.
    pub enable_idempotence: bool,
    /// The codec batches are compressed with (stored and served as sent).
    pub compression: Compression,
    /// Batches per partition in flight at once (Kafka's
    /// `max.in.flight.requests.per.connection`), for an idempotent producer (at most
    /// five); any other keeps one.
    pub max_in_flight: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            buffer_records: 10_000,
            enable_idempotence: true,
            compression: Compression::None,
            max_in_flight: 5,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// Explicit partition; else by key hash, or sticky for records without a key.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

type Delivery = oneshot::Sender<Result<RecordMetadata, ClientError>>;
pub(crate) type TopicPartition = (String, u32);
/// A sent batch's partition, the producer id it was written under, and, if it failed
/// for good, why.
type Done = (TopicPartition, Option<i64>, Option<ClientError>);

enum Command {
    Send(ProducerRecord, Delivery),
    Flush(oneshot::Sender<()>),
}

pub struct Producer {
    commands: mpsc::Sender<Command>,
    actor: JoinHandle<()>,
}

/// Resolves to the record's partition and offset once acknowledged.
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata, ClientError>>);

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(ClientError::Server {
                    code: ErrorCode::UnknownServerError,
                    message: "the producer stopped before the record was acknowledged".into(),
                })
            })
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    pub fn new(bootstrap: Bootstrap, config: ProducerConfig) -> Self {
        Self::start(bootstrap, config, None)
    }

    /// The producer of a `TransactionalProducer`: its records are transactional, written
    /// with the transaction's producer id and epoch to partitions added to it first.
    pub(crate) fn transactional(
        bootstrap: Bootstrap,
        config: ProducerConfig,
        txn: std::sync::Arc<TxnShared>,
    ) -> Self {
        Self::start(bootstrap, config, Some(txn))
    }

    fn start(
        bootstrap: Bootstrap,
        config: ProducerConfig,
        txn: Option<std::sync::Arc<TxnShared>>,
    ) -> Self {
        let (commands, rx) = mpsc::channel(config.buffer_records.max(1));
        let metadata = ClusterMetadata::new(AdminClient::new(bootstrap));
        let actor = tokio::spawn(Actor::new(config, metadata, txn).run(rx));
        Self { commands, actor }
    }

    /// Queues a record (waiting while the buffer is full); the returned future resolves
    /// when the record is acknowledged or definitely failed.
    pub async fn send(&self, record: ProducerRecord) -> DeliveryFuture {
        let (tx, rx) = oneshot::channel();
        // If the actor is gone, `tx` is dropped and the future reports it.
        let _ = self.commands.send(Command::Send(record, tx)).await;
        DeliveryFuture(rx)
    }

    /// Sends everything queued and waits until all of it is acknowledged or failed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Flushes, then stops the producer.
    pub async fn close(self) {
        self.flush().await;
        drop(self.commands);
        let _ = self.actor.await;
    }
}

struct Pending {
    builder: RecordBatchBuilder,
    deliveries: Vec<Delivery>,
    created: Instant,
}

/// A batch closed to more records. An idempotent producer's batch takes its producer id
/// and sequence when it is sent (a batch that failed for good costs its id, and the
/// batches queued behind it go out under the next); a transactional one when it is
/// sealed, inside its transaction's epoch.
struct Sealed {
    builder: RecordBatchBuilder,
    stamped: bool,
    deliveries: Vec<Delivery>,
    deadline: Instant,
}

struct Actor {
    config: ProducerConfig,
    metadata: ClusterMetadata,
    open: HashMap<TopicPartition, Pending>,
    sealed: HashMap<TopicPartition, VecDeque<Sealed>>,
    /// Batches in flight per partition.
    in_flight: HashMap<TopicPartition, InFlight>,
    sticky: HashMap<String, u32>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The idempotent producer's id and epoch, once known; `None` also after a batch
    /// failed for good (its sequence is lost, so the next batch starts a new id). A
    /// transactional producer takes the transaction's (a new epoch after every end).
    producer_id: Option<(i64, i16)>,
    /// Set for a transactional producer.
    txn: Option<std::sync::Arc<TxnShared>>,
    /// The next sequence number per partition, under `producer_id`.
    sequences: HashMap<TopicPartition, i32>,
}

impl Actor {
    fn new(
        config: ProducerConfig,
        metadata: ClusterMetadata,
        txn: Option<std::sync::Arc<TxnShared>>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            config,
            metadata,
            open: HashMap::new(),
            sealed: HashMap::new(),
            in_flight: HashMap::new(),
            sticky: HashMap::new(),
            flush_waiters: Vec::new(),
            done_tx,
            done_rx,
            producer_id: None,
            sequences: HashMap::new(),
            txn,
        }
    }

    fn idempotent(&self) -> bool {
        self.txn.is_some() || (self.config.enable_idempotence && self.config.acks == -1)
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let tick = self.config.linger.max(Duration::from_millis(1));
        // One ticker for the whole run: a sleep created anew in every select would be
        // reset by each incoming record, and under a steady stream faster than the
        // linger no batch would ever be sealed by time.
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closed = false;
        loop {
            if closed && self.idle() {
                return;
            }
            tokio::select! {
                command = commands.recv(), if !closed => match command {
                    Some(Command::Send(record, delivery)) => self.add(record, delivery).await,
                    Some(Command::Flush(waiter)) => {
                        self.seal_all();
                        self.flush_waiters.push(waiter);
                    }
                    None => {
                        closed = true;
                        self.seal_all();
                    }
                },
                Some((tp, sent_as, failure)) = self.done_rx.recv() => {
                    if self.in_flight.get(&tp).is_some_and(|f| f.len() == 0) {
                        self.in_flight.remove(&tp);
                    }
                    match (failure, &self.txn) {
                        (None, _) => {}
                        // The transaction cannot commit; its abort bumps the epoch,
                        // which restarts the sequences.
                        (Some(e), Some(txn)) => txn.record_failed(e),
                        // A failed batch leaves a gap in this id's sequence: the batches
                        // not sent yet take a new id, once those in flight under this
                        // one are settled (they fail at the gap).
                        (Some(_), None)
                            if self.idempotent()
                                && sent_as.is_some()
                                && sent_as == self.producer_id.map(|(id, _)| id) =>
                        {
                            self.producer_id = None;
                        }
                        (Some(_), None) => {}
                    }
                }
                _ = ticker.tick() => {}
            }
            self.seal_lingered();
            self.dispatch().await;
            if self.idle() {
                for waiter in self.flush_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
    }

    fn idle(&self) -> bool {
        self.open.is_empty()
            && self.in_flight.values().all(|f| f.len() == 0)
            && self.sealed.values().all(VecDeque::is_empty)
    }

    async fn choose_partition(&mut self, record: &ProducerRecord) -> Result<u32, ClientError> {
        let count = self.metadata.partitions(&record.topic).await?.len() as u32;
        if count == 0 {
            return Err(ClientError::Server {
                code: ErrorCode::UnknownTopicOrPartition,
                message: format!("topic '{}' has no partitions", record.topic),
            });
        }
        Ok(match (record.partition, &record.key) {
            (Some(p), _) if p < count => p,
            (Some(p), _) => {
                return Err(ClientError::Server {
                    code: ErrorCode::UnknownTopicOrPartition,
                    message: format!("topic '{}' has no partition {p}", record.topic),
                })
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => *self
                .sticky
                .entry(record.topic.clone())
                .or_insert_with(|| rand::random_range(0..count)),
        })
    }

    async fn add(&mut self, record: ProducerRecord, delivery: Delivery) {
        if let Some(txn) = &self.txn {
            let Some(p) = txn.producer() else {
                let _ = delivery.send(Err(ClientError::Server {
                    code: ErrorCode::InvalidTxnState,
                    message: "the transactional producer has no producer id".into(),
                }));
                return;
            };
            if self.producer_id != Some((p.producer_id, p.epoch)) {
                // A new transaction's epoch: its sequences start over.
                self.producer_id = Some((p.producer_id, p.epoch));
                self.sequences.clear();
            }
        } else if let Err(e) = self.ensure_producer_id().await {
            let _ = delivery.send(Err(e));
            return;
        }
        let partition = match self.choose_partition(&record).await {
            Ok(p) => p,
            Err(e) => {
                let _ = delivery.send(Err(e));
                return;
            }
        };
        let tp = (record.topic.clone(), partition);
        if let Some(txn) = &self.txn {
            if let Err(e) = txn.add_partition(&tp).await {
                txn.record_failed(e.clone());
                let _ = delivery.send(Err(e));
                return;
            }
        }
        let size = record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + 16;
        let full = self.open.get(&tp).is_some_and(|p| {
            !p.builder.is_empty() && p.builder.estimated_size() + size > self.config.batch_size
        });
        if full {
            self.seal(&tp);
        }
        let compression = self.config.compression;
        let transactional = self.txn.is_some();
        let pending = self.open.entry(tp.clone()).or_insert_with(|| Pending {
            builder: {
                let mut builder = RecordBatchBuilder::with_compression(compression);
                builder.transactional = transactional;
                builder
            },
            deliveries: Vec::new(),
            created: Instant::now(),
        });
        pending.builder.push(
            record.key.as_deref(),
            record.value.as_deref(),
            record.timestamp_ms.unwrap_or_else(now_ms),
        );
        pending.deliveries.push(delivery);
        if pending.builder.estimated_size() >= self.config.batch_size {
            self.seal(&tp);
        }
    }

    /// Gives the batch the producer id, epoch and next sequence of its partition.
    fn stamp(&mut self, tp: &TopicPartition, builder: &mut RecordBatchBuilder) {
        if let (true, Some((id, epoch))) = (self.idempotent(), self.producer_id) {
            let sequence = self.sequences.entry(tp.clone()).or_insert(0);
            builder.producer_id = id;
            builder.producer_epoch = epoch;
            builder.base_sequence = *sequence;
            *sequence = sequence.wrapping_add(builder.len() as i32);
        }
    }

    fn seal(&mut self, tp: &TopicPartition) {
        let Some(mut pending) = self.open.remove(tp) else {
            return;
        };
        let stamped = self.txn.is_some();
        if stamped {
            self.stamp(tp, &mut pending.builder);
        }
        if record_is_keyless_sticky(&self.sticky, tp) {
            // Kafka's sticky partitioner moves on once a batch is complete.
            self.sticky.remove(&tp.0);
        }
        self.sealed
            .entry(tp.clone())
            .or_default()
            .push_back(Sealed {
                builder: pending.builder,
                stamped,
                deliveries: pending.deliveries,
                deadline: pending.created + self.config.delivery_timeout,
            });
    }

    fn seal_all(&mut self) {
        let tps: Vec<TopicPartition> = self.open.keys().cloned().collect();
        for tp in tps {
            self.seal(&tp);
        }
    }

    fn seal_lingered(&mut self) {
        let linger = self.config.linger;
        let due: Vec<TopicPartition> = self
            .open
            .iter()
            .filter(|(_, p)| p.created.elapsed() >= linger)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.seal(&tp);
        }
    }

    /// How many batches of one partition may be in flight at once: at most the five a
    /// leader remembers per producer (a retry of an older one would not be known as one).
    fn max_in_flight(&self) -> usize {
        if self.idempotent() {
            self.config.max_in_flight.clamp(1, MAX_IN_FLIGHT_IDEMPOTENT)
        } else {
            1
        }
    }

    /// An idempotent producer without an id (its first record, or its last id was given
    /// up) takes one before it adds or sends; its sequences start over under the new id.
    async fn ensure_producer_id(&mut self) -> Result<(), ClientError> {
        if self.txn.is_some() || !self.idempotent() || self.producer_id.is_some() {
            return Ok(());
        }
        self.producer_id = Some(self.metadata.init_producer_id().await?);
        self.sequences.clear();
        Ok(())
    }

    /// Fails the queued batches whose delivery timeout passed.
    fn expire_sealed(&mut self) {
        let now = Instant::now();
        for (tp, queue) in &mut self.sealed {
            while queue.front().is_some_and(|b| b.deadline <= now) {
                let Some(batch) = queue.pop_front() else {
                    break;
                };
                for delivery in batch.deliveries {
                    let _ = delivery.send(Err(ClientError::Server {
                        code: ErrorCode::RequestTimedOut,
                        message: format!(
                            "no producer id for {}-{} within the delivery timeout",
                            tp.0, tp.1
                        ),
                    }));
                }
            }
        }
    }

    /// The producer id the next batch of `tp` goes out under.
    fn next_producer_id(&self, tp: &TopicPartition) -> Option<i64> {
        match self.sealed.get(tp).and_then(VecDeque::front) {
            Some(b) if b.stamped => (b.builder.producer_id >= 0).then_some(b.builder.producer_id),
            _ if self.idempotent() => self.producer_id.map(|(id, _)| id),
            _ => None,
        }
    }

    fn admits(&self, tp: &TopicPartition, limit: usize) -> bool {
        let queued = self.sealed.get(tp).is_some_and(|q| !q.is_empty());
        queued
            && self
                .in_flight
                .get(tp)
                .is_none_or(|f| f.admits(self.next_producer_id(tp), limit))
    }

    async fn dispatch(&mut self) {
        let limit = self.max_in_flight();
        let ready: Vec<TopicPartition> = self
            .sealed
            .keys()
            .filter(|tp| self.admits(tp, limit))
            .cloned()
            .collect();
        if ready.is_empty() {
            return;
        }
        // While no id can be had, batches wait (and fail at their deadline).
        if let Err(e) = self.ensure_producer_id().await {
            tracing::debug!("no producer id yet: {e}");
            self.expire_sealed();
            return;
        }
        for tp in ready {
            while self.admits(&tp, limit) {
                let Some(batch) = self.sealed.get_mut(&tp).and_then(VecDeque::pop_front) else {
                    break;
                };
                self.send(tp.clone(), batch);
            }
        }
    }

    /// Sends one batch in a task of its own; its outcome comes back on `done_rx`.
    fn send(&mut self, tp: TopicPartition, batch: Sealed) {
        let Sealed {
            mut builder,
            stamped,
            deliveries,
            deadline,
        } = batch;
        if !stamped {
            self.stamp(&tp, &mut builder);
        }
        let sent_as = (builder.producer_id >= 0).then_some(builder.producer_id);
        let bytes = Bytes::from(builder.build());
        let flight = self.in_flight.entry(tp.clone()).or_default().clone();
        let ticket = flight.sent(sent_as);
        let metadata = self.metadata.clone();
        let done = self.done_tx.clone();
        let (acks, timeout) = (self.config.acks, self.config.request_timeout);
        let transactional_id = self.txn.as_ref().map(|t| t.transactional_id().to_string());
        tokio::spawn(async move {
            let target = BatchTarget {
                tp: &tp,
                acks,
                timeout,
                transactional_id: transactional_id.as_deref(),
                in_flight: (&flight, ticket),
            };
            let mut result = send_batch(&metadata, &target, &bytes, deadline).await;
            flight.settled(ticket);
            if target.transactional_id.is_some() {
                result = result.map_err(crate::transactional::delivery_error);
            }
            for (delta, delivery) in deliveries.into_iter().enumerate() {
                let outcome = match &result {
                    Ok(base) => Ok(RecordMetadata {
                        topic: tp.0.clone(),
                        partition: tp.1,
                        offset: base + delta as u64,
                    }),
                    Err(e) => Err(e.clone()),
                };
                let _ = delivery.send(outcome);
            }
            let _ = done.send((tp, sent_as, result.err()));
        });
    }
}

fn record_is_keyless_sticky(sticky: &HashMap<String, u32>, tp: &TopicPartition) -> bool {
    sticky.get(&tp.0) == Some(&tp.1)
}

/// The most batches per partition an idempotent producer keeps in flight: the leader
/// remembers a producer's last five batches (Kafka's limit too).
const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;
