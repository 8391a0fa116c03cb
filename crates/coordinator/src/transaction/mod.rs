//! One transactional id's state machine (Kafka's transaction coordinator, KIP-98, with
//! KIP-890's epoch bump at every end), free of I/O.
//!
//! The coordinator feeds it requests (`init_producer_id`, `add_partitions`,
//! `add_offsets`, `add_offset_commits`, `end`), the completion of its markers
//! (`markers_written`) and clock ticks (`tick`), with wall-clock milliseconds passed in,
//! and acts on the [`TxnOutput`]s: persist the transaction (before answering), write
//! markers to the partitions (retried until done). Every state change happens in this
//! file:
//!
//! ```text
//!             init (epoch bump)                       end(commit)
//! Empty / Complete* ────────────> Empty ──add──> Ongoing ──────────> PrepareCommit ──markers──> CompleteCommit
//!                                                  │  │  end(abort)
//!                                                  │  └──────────────> PrepareAbort ──markers──> CompleteAbort
//!                                                  │ init by a new producer, or the timeout
//!                                                  └─────────────────> PrepareEpochFence ──markers──> CompleteAbort
//! ```
//! Every end bumps the epoch and the markers carry the new one, so a late produce or
//! EndTxn of the old transaction is fenced (KIP-890). An epoch about to run out gives the
//! producer a fresh producer id instead; callers pass one in when
//! [`Transaction::needs_fresh_producer_id`] says so.

use std::collections::BTreeSet;
use std::time::Duration;

use rill_common::group::{OffsetCommit, TopicPartition};
use rill_common::transaction::{ProducerIdAndEpoch, TxnDescription, TxnState};
use rill_common::ErrorCode;

#[cfg(test)]
mod tests;

/// The coordinator's bound on `transaction.timeout.ms` (`transaction.max.timeout.ms`).
#[derive(Debug, Clone, Copy)]
pub struct TxnConfig {
    pub max_timeout: Duration,
}

/// What the coordinator must do after feeding the transaction an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutput {
    /// Write `Transaction::describe()` through the metadata log before answering.
    Persist,
    /// Write a COMMIT or ABORT marker stamped with `producer` to every partition, and
    /// commit `offsets` with a COMMIT; then call `markers_written`. Retried until done.
    WriteMarkers(Markers),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub producer: ProducerIdAndEpoch,
    pub commit: bool,
    pub partitions: BTreeSet<TopicPartition>,
    /// group id, offsets: made visible when a COMMIT is written.
    pub offsets: Vec<(String, Vec<OffsetCommit>)>,
}

/// The last epoch a producer id may use; at it, the producer gets a fresh id.
const LAST_EPOCH: i16 = i16::MAX - 1;

#[derive(Debug, Clone)]
pub struct Transaction {
    d: TxnDescription,
}

impl Transaction {
    /// A transactional id seen for the first time, given `producer_id` at epoch 0.
    pub fn new(
        transactional_id: &str,
        producer_id: i64,
        timeout: Duration,
        now_ms: u64,
        out: &mut Vec<TxnOutput>,
    ) -> Self {
        out.push(TxnOutput::Persist);
        Self {
            d: TxnDescription {
                transactional_id: transactional_id.to_string(),
                producer: ProducerIdAndEpoch {
                    producer_id,
                    epoch: 0,
                },
                previous_producer: None,
                state: TxnState::Empty,
                timeout_ms: duration_ms(timeout),
                started_ms: None,
                updated_ms: now_ms,
                partitions: BTreeSet::new(),
                offsets: Default::default(),
                marker_producer: None,
            },
        }
    }

    /// The transaction as the metadata log held it (after a coordinator failover). If it
    /// was preparing, `pending_markers` says what to write again.
    pub fn restore(description: TxnDescription) -> Self {
        Self { d: description }
    }

    pub fn describe(&self) -> &TxnDescription {
        &self.d
    }

    pub fn state(&self) -> TxnState {
        self.d.state
    }

    pub fn producer(&self) -> ProducerIdAndEpoch {
        self.d.producer
    }

    /// The next epoch bump would pass the last epoch: pass a fresh producer id to
    /// `init_producer_id` or `end`.
    pub fn needs_fresh_producer_id(&self) -> bool {
        self.d.producer.epoch >= LAST_EPOCH - 1
    }

    /// The markers still to write when the transaction is preparing.
    pub fn pending_markers(&self) -> Option<Markers> {
        let commit = match self.d.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => false,
            _ => return None,
        };
        Some(Markers {
            producer: self.d.marker_producer.unwrap_or(self.d.producer),
            commit,
            partitions: self.d.partitions.clone(),
            offsets: if commit {
                self.d
                    .offsets
                    .iter()
                    .map(|(g, o)| (g.clone(), o.clone()))
                    .collect()
            } else {
                Vec::new()
            },
        })
    }

    /// InitProducerId: a producer (re)starts with this transactional id. Its epoch is
    /// bumped, which fences every older instance; an open transaction is aborted first
    /// (CONCURRENT_TRANSACTIONS until that is done: the producer retries).
    /// `expected`: KIP-360, the id and epoch the producer had (a retry after an error).
    pub fn init_producer_id(
        &mut self,
        now_ms: u64,
        config: &TxnConfig,
        timeout: Duration,
        expected: Option<ProducerIdAndEpoch>,
        fresh_producer_id: Option<i64>,
        out: &mut Vec<TxnOutput>,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        if timeout.is_zero() || timeout > config.max_timeout {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        if let Some(expected) = expected {
            if expected != self.d.producer && Some(expected) != self.d.previous_producer {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match self.d.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                self.fence(now_ms, out);
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                self.bump_epoch(fresh_producer_id)?;
                self.d.timeout_ms = duration_ms(timeout);
                self.become_empty(now_ms);
                out.push(TxnOutput::Persist);
                Ok(self.d.producer)
            }
        }
    }

    /// AddPartitionsToTxn: the producer will write to `partitions` in this transaction.
    pub fn add_partitions(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
        out: &mut Vec<TxnOutput>,
    ) -> Result<(), ErrorCode> {
        self.add(now_ms, producer, out, |d| {
            let before = d.partitions.len();
            d.partitions.extend(partitions.iter().cloned());
            d.partitions.len() > before
        })
    }

    /// AddOffsetsToTxn: offsets of `group_id` will be committed with this transaction.
    pub fn add_offsets(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        group_id: &str,
        out: &mut Vec<TxnOutput>,
    ) -> Result<(), ErrorCode> {
        self.add(now_ms, producer, out, |d| {
            let new = !d.offsets.contains_key(group_id);
            d.offsets.entry(group_id.to_string()).or_default();
            new
        })
    }

    /// Adds to the transaction (opening it if need be); persisted only if it began or
    /// `add` reports something new.
    fn add(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        out: &mut Vec<TxnOutput>,
        add: impl FnOnce(&mut TxnDescription) -> bool,
    ) -> Result<(), ErrorCode> {
        self.check_addable(producer)?;
        let began = self.begin(now_ms);
        let new = add(&mut self.d);
        if new || began {
            self.d.updated_ms = now_ms;
            out.push(TxnOutput::Persist);
        }
        Ok(())
    }

    /// TxnOffsetCommit: offsets of a group added to this open transaction, visible when
    /// it commits (a later offset for the same partition replaces an earlier one).
    pub fn add_offset_commits(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        group_id: &str,
        offsets: Vec<OffsetCommit>,
        out: &mut Vec<TxnOutput>,
    ) -> Result<(), ErrorCode> {
        self.check_producer(producer)?;
        if self.d.state != TxnState::Ongoing {
            return Err(ErrorCode::InvalidTxnState);
        }
        let Some(pending) = self.d.offsets.get_mut(group_id) else {
            return Err(ErrorCode::InvalidTxnState);
        };
        for offset in offsets {
            pending.retain(|o| (&o.topic, o.partition) != (&offset.topic, offset.partition));
            pending.push(offset);
        }
        self.d.updated_ms = now_ms;
        out.push(TxnOutput::Persist);
        Ok(())
    }

    /// A partition leader checks a transactional batch before its first write to a
    /// partition: the transaction is open with this producer and includes it.
    pub fn verify_partition(
        &self,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), ErrorCode> {
        self.check_producer(producer)?;
        if self.d.state != TxnState::Ongoing || !self.d.partitions.contains(partition) {
            return Err(ErrorCode::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn: commit or abort. Answered once the decision is persisted, with the bumped
    /// epoch the producer uses next; markers follow. A retry of an EndTxn that was already
    /// decided (the producer's epoch is the previous one) gets the same answer.
    pub fn end(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        commit: bool,
        fresh_producer_id: Option<i64>,
        out: &mut Vec<TxnOutput>,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        let decided = match self.d.state {
            TxnState::PrepareCommit | TxnState::CompleteCommit => Some(true),
            TxnState::PrepareAbort | TxnState::CompleteAbort => Some(false),
            _ => None,
        };
        if let (Some(decided), true) = (decided, self.d.previous_producer == Some(producer)) {
            return if decided == commit {
                Ok(self.d.producer)
            } else {
                Err(ErrorCode::InvalidTxnState)
            };
        }
        self.check_producer(producer)?;
        match self.d.state {
            TxnState::Ongoing => {
                self.prepare_end(now_ms, commit, fresh_producer_id, out)?;
                Ok(self.d.producer)
            }
            // Nothing was added: an abort ends nothing, a commit is a mistake.
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort if !commit => {
                self.bump_epoch(fresh_producer_id)?;
                self.d.state = TxnState::CompleteAbort;
                self.d.updated_ms = now_ms;
                out.push(TxnOutput::Persist);
                Ok(self.d.producer)
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// EndTxn of a client before KIP-890 (Kafka's EndTxn v0-4, transaction version 1,
    /// which librdkafka speaks): the epoch stays and the markers carry it, so the next
    /// transaction continues the producer's sequences. A retry of a completed end with
    /// the same decision gets the same answer; one while markers are being written is
    /// CONCURRENT_TRANSACTIONS (the client retries). Late writes of such a client are
    /// kept out by the leaders' check of a transaction's first write to a partition.
    pub fn end_keeping_epoch(
        &mut self,
        now_ms: u64,
        producer: ProducerIdAndEpoch,
        commit: bool,
        out: &mut Vec<TxnOutput>,
    ) -> Result<ProducerIdAndEpoch, ErrorCode> {
        self.check_producer(producer)?;
        match self.d.state {
            TxnState::Ongoing => {
                let state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                self.enter_prepare(now_ms, state, self.d.producer, out);
                Ok(self.d.producer)
            }
            TxnState::CompleteCommit if commit => Ok(self.d.producer),
            TxnState::CompleteAbort if !commit => Ok(self.d.producer),
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// Every marker of the preparing transaction is written (and, for a commit, its
    /// offsets committed): it completes and forgets its partitions and offsets.
    /// `written` names the markers' producer; a completion of other ones changes nothing.
    pub fn markers_written(
        &mut self,
        now_ms: u64,
        written: ProducerIdAndEpoch,
        out: &mut Vec<TxnOutput>,
    ) -> bool {
        let complete = match self.d.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => TxnState::CompleteAbort,
            _ => return false,
        };
        if self.d.marker_producer != Some(written) {
            return false;
        }
        self.d.state = complete;
        self.d.partitions.clear();
        self.d.offsets.clear();
        self.d.started_ms = None;
        self.d.marker_producer = None;
        self.d.updated_ms = now_ms;
        out.push(TxnOutput::Persist);
        true
    }

    /// The clock: an open transaction past its timeout is aborted by the coordinator
    /// (its producer is fenced: its next request gets PRODUCER_FENCED).
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<TxnOutput>) {
        let expired = self.d.state == TxnState::Ongoing
            && self
                .d
                .started_ms
                .is_some_and(|started| now_ms.saturating_sub(started) > self.d.timeout_ms);
        if expired {
            self.fence(now_ms, out);
        }
    }

    /// Operator's abort of a hanging transaction (`rill txn abort`): as a timeout.
    pub fn abort_by_operator(
        &mut self,
        now_ms: u64,
        out: &mut Vec<TxnOutput>,
    ) -> Result<(), ErrorCode> {
        if self.d.state != TxnState::Ongoing {
            return Err(ErrorCode::InvalidTxnState);
        }
        self.fence(now_ms, out);
        Ok(())
    }

    /// Ongoing -> PrepareEpochFence: the coordinator aborts (a new producer, the timeout,
    /// an operator). Ongoing never runs at the last epoch (bumps rotate the id before
    /// it), so the bump always fences; the fenced producer's next init rotates the id.
    fn fence(&mut self, now_ms: u64, out: &mut Vec<TxnOutput>) {
        assert_eq!(
            self.d.state,
            TxnState::Ongoing,
            "fence from {:?}",
            self.d.state
        );
        assert!(
            self.d.producer.epoch < LAST_EPOCH,
            "ongoing at the last epoch"
        );
        self.d.previous_producer = Some(self.d.producer);
        self.d.producer.epoch += 1;
        self.enter_prepare(now_ms, TxnState::PrepareEpochFence, self.d.producer, out);
    }

    /// Ongoing -> PrepareCommit / PrepareAbort at the producer's EndTxn: bump the epoch
    /// (or rotate the id; then the markers close the old id at the last epoch).
    fn prepare_end(
        &mut self,
        now_ms: u64,
        commit: bool,
        fresh_producer_id: Option<i64>,
        out: &mut Vec<TxnOutput>,
    ) -> Result<(), ErrorCode> {
        assert_eq!(
            self.d.state,
            TxnState::Ongoing,
            "end from {:?}",
            self.d.state
        );
        let old_id = self.d.producer.producer_id;
        self.bump_epoch(fresh_producer_id)?;
        let markers = if self.d.producer.producer_id == old_id {
            self.d.producer
        } else {
            ProducerIdAndEpoch {
                producer_id: old_id,
                epoch: LAST_EPOCH,
            }
        };
        let state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        self.enter_prepare(now_ms, state, markers, out);
        Ok(())
    }

    /// The decision is made: persist it, then write markers stamped `markers`.
    fn enter_prepare(
        &mut self,
        now_ms: u64,
        state: TxnState,
        markers: ProducerIdAndEpoch,
        out: &mut Vec<TxnOutput>,
    ) {
        assert!(state.is_preparing(), "prepare into {state:?}");
        self.d.marker_producer = Some(markers);
        self.d.state = state;
        self.d.updated_ms = now_ms;
        out.push(TxnOutput::Persist);
        out.extend(self.pending_markers().map(TxnOutput::WriteMarkers));
    }

    /// The next epoch, or a fresh producer id at epoch 0 when the epoch runs out.
    fn bump_epoch(&mut self, fresh_producer_id: Option<i64>) -> Result<(), ErrorCode> {
        let previous = self.d.producer;
        if self.needs_fresh_producer_id() {
            // The caller retries with a fresh id; nothing changed.
            let producer_id = fresh_producer_id.ok_or(ErrorCode::ConcurrentTransactions)?;
            self.d.producer = ProducerIdAndEpoch {
                producer_id,
                epoch: 0,
            };
        } else {
            self.d.producer.epoch += 1;
        }
        self.d.previous_producer = Some(previous);
        Ok(())
    }

    fn become_empty(&mut self, now_ms: u64) {
        self.d.state = TxnState::Empty;
        self.d.partitions.clear();
        self.d.offsets.clear();
        self.d.started_ms = None;
        self.d.marker_producer = None;
        self.d.updated_ms = now_ms;
    }

    /// Empty / Complete* -> Ongoing when something is first added.
    fn begin(&mut self, now_ms: u64) -> bool {
        if self.d.state == TxnState::Ongoing {
            return false;
        }
        self.become_empty(now_ms);
        self.d.state = TxnState::Ongoing;
        self.d.started_ms = Some(now_ms);
        true
    }

    fn check_producer(&self, producer: ProducerIdAndEpoch) -> Result<(), ErrorCode> {
        if producer.producer_id != self.d.producer.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if producer.epoch != self.d.producer.epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(())
    }

    fn check_addable(&self, producer: ProducerIdAndEpoch) -> Result<(), ErrorCode> {
        self.check_producer(producer)?;
        match self.d.state {
            TxnState::Empty
            | TxnState::Ongoing
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => Ok(()),
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Dead => Err(ErrorCode::InvalidProducerIdMapping),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
