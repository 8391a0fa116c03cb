//! The transactional producer (KIP-98 with KIP-890): records sent between `begin` and
//! `commit` to any partitions, with the consumer offsets sent to the transaction, become
//! visible to read_committed consumers all at once, or never (`abort`).
//!
//! Its state machine, in one place (`TxnClientState`):
//! ```text
//! Uninitialized --init_transactions--> Ready --begin--> InTransaction
//! InTransaction --commit / abort--> Ready
//! InTransaction --a record or call failed--> Abortable --abort--> Ready
//! any --PRODUCER_FENCED (a newer producer has the id)--> Fenced (every call fails)
//! ```
//! Every end bumps the producer epoch, so a late write of a finished transaction is
//! refused by the partition's leader instead of landing in the next one.

mod link;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rill_common::transaction::ProducerIdAndEpoch;
use rill_common::ErrorCode;

use self::link::TxnLink;
use crate::{
    Bootstrap, ClientError, ConsumerGroupMetadata, DeliveryFuture, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

/// What the producer's actor and the transactional producer share: the coordinator
/// link, the producer id and epoch of the open transaction, the partitions it added,
/// and the first failure of one of its records.
pub(crate) struct TxnShared {
    link: TxnLink,
    max_block: Duration,
    progress: Mutex<TxnProgress>,
}

#[derive(Default)]
struct TxnProgress {
    producer: Option<ProducerIdAndEpoch>,
    partitions: HashSet<TopicPartition>,
    failure: Option<ClientError>,
}

impl TxnShared {
    fn progress(&self) -> std::sync::MutexGuard<'_, TxnProgress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn transactional_id(&self) -> &str {
        self.link.transactional_id()
    }

    /// The producer id and epoch records are written with now.
    pub(crate) fn producer(&self) -> Option<ProducerIdAndEpoch> {
        self.progress().producer
    }

    /// Adds `tp` to the open transaction before its first record goes there.
    pub(crate) async fn add_partition(&self, tp: &TopicPartition) -> Result<(), ClientError> {
        let producer = {
            let progress = self.progress();
            if progress.partitions.contains(tp) {
                return Ok(());
            }
            progress
                .producer
                .ok_or_else(|| invalid_state("no producer id yet"))?
        };
        let deadline = Instant::now() + self.max_block;
        self.link
            .add_partitions(deadline, producer, std::slice::from_ref(tp))
            .await?;
        self.progress().partitions.insert(tp.clone());
        Ok(())
    }

    /// A record of the open transaction failed for good: the transaction must abort.
    pub(crate) fn record_failed(&self, e: ClientError) {
        self.progress().failure.get_or_insert(e);
    }
}

fn invalid_state(message: &str) -> ClientError {
    ClientError::Server {
        code: ErrorCode::InvalidTxnState,
        message: message.to_string(),
    }
}

/// A newer producer with this transactional id exists (or this one's epoch is gone):
/// nothing this producer does can succeed any more. The Java client reports both as
/// PRODUCER_FENCED, and so does this one.
fn is_fenced(e: &ClientError) -> bool {
    matches!(
        e.code(),
        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch
    )
}

/// A transactional record's failure as the application sees it: a fenced producer's
/// write fails with PRODUCER_FENCED, however the partition's leader put it.
pub(crate) fn delivery_error(e: ClientError) -> ClientError {
    if is_fenced(&e) {
        fenced(&e)
    } else {
        e
    }
}

fn fenced(e: &ClientError) -> ClientError {
    ClientError::Server {
        code: ErrorCode::ProducerFenced,
        message: format!("this producer was fenced by a newer one with its transactional id ({e})"),
    }
}

#[derive(Debug, Clone)]
enum TxnClientState {
    Uninitialized,
    Ready,
    InTransaction {
        offsets_sent: bool,
    },
    /// The open transaction cannot commit (the error says why): abort it.
    Abortable(ClientError),
    Fenced(ClientError),
}

pub struct TransactionalProducer {
    producer: Producer,
    shared: Arc<TxnShared>,
    transaction_timeout: Duration,
    state: TxnClientState,
}

#[derive(Debug, Clone)]
pub struct TransactionalConfig {
    /// `transactional.id`: one producer at a time may use it (a new one fences the old).
    pub transactional_id: String,
    /// `transaction.timeout.ms`: the coordinator aborts a transaction open longer.
    pub transaction_timeout: Duration,
    /// `max.block.ms`: how long a coordinator call is retried.
    pub max_block: Duration,
}

impl TransactionalConfig {
    pub fn new(transactional_id: &str) -> Self {
        Self {
            transactional_id: transactional_id.to_string(),
            transaction_timeout: Duration::from_secs(60),
            max_block: Duration::from_secs(60),
        }
    }
}

impl TransactionalProducer {
    /// A transactional producer (idempotent, acks=all); `init_transactions` first.
    pub fn new(
        bootstrap: Bootstrap,
        mut config: ProducerConfig,
        txn: TransactionalConfig,
    ) -> Result<Self, ClientError> {
        if txn.transactional_id.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the transactional id is empty".into(),
            ));
        }
        if config.acks != -1 {
            return Err(ClientError::InvalidArgument(
                "a transactional producer writes with acks=all".into(),
            ));
        }
        config.enable_idempotence = true;
        let shared = Arc::new(TxnShared {
            link: TxnLink::new(bootstrap.clone(), txn.transactional_id),
            max_block: txn.max_block,
            progress: Mutex::default(),
        });
        Ok(Self {
            producer: Producer::transactional(bootstrap, config, shared.clone()),
            shared,
            transaction_timeout: txn.transaction_timeout,
            state: TxnClientState::Uninitialized,
        })
    }

    pub fn transactional_id(&self) -> &str {
        self.shared.transactional_id()
    }

    /// The producer id and epoch the next records carry (after `init_transactions`).
    pub fn producer_id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.shared.producer()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.shared.max_block
    }

    /// Whether `e` ends this producer; if so it becomes fenced and the error says so.
    fn classify(&mut self, e: ClientError, abortable: bool) -> ClientError {
        if is_fenced(&e) {
            let e = fenced(&e);
            self.state = TxnClientState::Fenced(e.clone());
            e
        } else {
            if abortable {
                self.state = TxnClientState::Abortable(e.clone());
            }
            e
        }
    }

    fn check_usable(&self) -> Result<(), ClientError> {
        match &self.state {
            TxnClientState::Fenced(e) => Err(e.clone()),
            TxnClientState::Uninitialized => Err(invalid_state("call init_transactions first")),
            _ => Ok(()),
        }
    }

    /// Gets the producer id for the transactional id, fencing any earlier producer with
    /// it; that producer's open transaction is aborted first.
    pub async fn init_transactions(&mut self) -> Result<(), ClientError> {
        if !matches!(self.state, TxnClientState::Uninitialized) {
            return Err(invalid_state("init_transactions was already called"));
        }
        let producer = self
            .shared
            .link
            .init_producer_id(self.deadline(), self.transaction_timeout)
            .await?;
        self.shared.progress().producer = Some(producer);
        self.state = TxnClientState::Ready;
        Ok(())
    }

    /// Opens a transaction (no call to the coordinator until something is sent).
    pub fn begin(&mut self) -> Result<(), ClientError> {
        self.check_usable()?;
        if !matches!(self.state, TxnClientState::Ready) {
            return Err(invalid_state(
                "a transaction is already open: commit or abort it first",
            ));
        }
        self.state = TxnClientState::InTransaction {
            offsets_sent: false,
        };
        Ok(())
    }

    /// Sends a record in the open transaction; the future resolves when it is written
    /// (it becomes visible to read_committed consumers only when the transaction commits).
    pub async fn send(&mut self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        self.check_usable()?;
        match &self.state {
            TxnClientState::InTransaction { .. } => Ok(self.producer.send(record).await),
            TxnClientState::Abortable(e) => Err(e.clone()),
            _ => Err(invalid_state("no open transaction: call begin first")),
        }
    }

    /// Commits `offsets` (next offsets to read) of the consumer's group with the open
    /// transaction: they become the group's committed offsets exactly when it commits.
    pub async fn send_offsets_to_transaction(
        &mut self,
        offsets: &[(TopicPartition, u64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<(), ClientError> {
        self.check_usable()?;
        if !matches!(self.state, TxnClientState::InTransaction { .. }) {
            return Err(invalid_state("no open transaction: call begin first"));
        }
        let Some(producer) = self.shared.producer() else {
            return Err(invalid_state("no producer id"));
        };
        match self
            .shared
            .link
            .send_offsets(self.deadline(), producer, offsets, group)
            .await
        {
            Ok(()) => {
                self.state = TxnClientState::InTransaction { offsets_sent: true };
                Ok(())
            }
            Err(e) => Err(self.classify(e, true)),
        }
    }

    /// Sends what is queued, then commits: every record and offset of the transaction
    /// becomes visible at once. A failure of one of its records fails the commit, and the
    /// transaction must then be aborted.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.end(true).await
    }

    /// Sends what is queued, then aborts: nothing of the transaction is ever visible to
    /// read_committed consumers.
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), ClientError> {
        self.check_usable()?;
        let offsets_sent = match &self.state {
            TxnClientState::InTransaction { offsets_sent } => *offsets_sent,
            TxnClientState::Abortable(e) if commit => return Err(e.clone()),
            TxnClientState::Abortable(_) => true,
            _ => return Err(invalid_state("no open transaction")),
        };
        self.producer.flush().await;
        let (producer, partitions, failure) = {
            let mut progress = self.shared.progress();
            (
                progress.producer,
                !progress.partitions.is_empty(),
                progress.failure.take(),
            )
        };
        if let Some(e) = failure {
            if is_fenced(&e) {
                return Err(self.classify(e, false));
            }
            if commit {
                return Err(self.classify(e, true));
            }
        }
        let Some(producer) = producer else {
            return Err(invalid_state("no producer id"));
        };
        if partitions || offsets_sent {
            let next = match self
                .shared
                .link
                .end(self.deadline(), producer, commit)
                .await
            {
                Ok(next) => next,
                Err(e) => return Err(self.classify(e, commit)),
            };
            let mut progress = self.shared.progress();
            progress.producer = Some(next);
            progress.partitions.clear();
        }
        self.state = TxnClientState::Ready;
        Ok(())
    }

    /// Waits for what is queued, then stops (an open transaction is left to the
    /// coordinator, which aborts it at its timeout or when the id is initialised again).
    pub async fn close(self) {
        self.producer.close().await;
    }
}
