//! The replica manager's part in transactions: the coordinator's COMMIT or ABORT markers
//! written to a partition as its leader, at acks=all, and the verification of a
//! transaction's first write to a partition with the coordinator (KIP-890).

use std::sync::Arc;
use std::time::Duration;

use rill_common::record::{BatchHeader, ControlMarker, ControlType};
use rill_common::transaction::{ProducerIdAndEpoch, TxnMarker};
use rill_common::ErrorCode;

use super::{now_ms, ReplicaManager};
use crate::partition::Partition;
use crate::producer_state::{ProducerDescription, SequenceCheck};
use crate::txn_verifier::TxnVerifier;
use crate::BrokerError;

impl ReplicaManager {
    /// The coordinator port that verifies transactions' first writes (set once by the
    /// node; without it transactional batches are refused).
    pub fn set_txn_verifier(&self, verifier: Arc<dyn TxnVerifier>) {
        let _ = self.txn_verifier.set(verifier);
    }

    /// A transaction's first write to `p`: asks the coordinator (KIP-890) and returns the
    /// guard the append must still find. `None` for any other batch.
    pub(super) async fn verify_first_write(
        &self,
        p: &Partition,
        batch: &[u8],
        transactional_id: Option<&str>,
    ) -> Result<Option<u64>, BrokerError> {
        let Ok(header) = BatchHeader::parse(batch) else {
            return Ok(None); // the append's validation reports it
        };
        if !p.needs_verification(&header) {
            return Ok(None);
        }
        // The producer's epoch and sequence first, as the append checks them: a fenced
        // producer learns it is fenced, a retry of a stored batch needs no verdict.
        if let SequenceCheck::Duplicate { .. } = p.check_sequence(&header)? {
            return Ok(None);
        }
        let refuse = |code: ErrorCode, message: String| BrokerError::Transaction { code, message };
        let transactional_id = transactional_id.ok_or_else(|| {
            refuse(
                ErrorCode::InvalidRequest,
                "a transactional batch must name its transactional id".into(),
            )
        })?;
        let verifier = self.txn_verifier.get().ok_or_else(|| {
            refuse(
                ErrorCode::CoordinatorNotAvailable,
                "no transaction coordinator is reachable".into(),
            )
        })?;
        let guard = p.begin_verification(header.producer_id);
        let producer = ProducerIdAndEpoch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
        };
        verifier
            .verify(transactional_id, producer, &(p.topic.clone(), p.key.partition))
            .await
            .map_err(|code| {
                // Kafka clients before KIP-890 know a fenced producer by this code.
                let code = match code {
                    ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
                    other => other,
                };
                refuse(
                    code,
                    format!(
                        "the coordinator of {transactional_id} does not count {}-{} in an open transaction of this producer",
                        p.topic, p.key.partition
                    ),
                )
            })?;
        Ok(Some(guard))
    }

    /// Appends `marker` to `topic`-`partition` as its leader and waits until every ISR
    /// member has it (the coordinator completes a transaction only when every marker is
    /// committed, so a failover cannot lose one).
    pub async fn write_marker(
        &self,
        topic: &str,
        partition: u32,
        marker: TxnMarker,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let control = ControlMarker {
            kind: if marker.commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
            coordinator_epoch: marker.coordinator_epoch,
        };
        let appended =
            p.append_marker(marker.producer_id, marker.producer_epoch, control, now_ms())?;
        p.notify_changed();
        self.make_durable(p.clone(), appended.next_offset).await?;
        self.wait_for_high_watermark(&p, appended.next_offset, timeout)
            .await
    }
}

impl ReplicaManager {
    /// The producers a partition this broker leads remembers (Kafka's DescribeProducers).
    pub fn describe_producers(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<ProducerDescription>, BrokerError> {
        Ok(self
            .leader_partition(topic, partition)?
            .describe_producers())
    }

    /// Aborts a hanging transaction: one open here that no coordinator will end (a batch
    /// that landed after its transaction ended, or a coordinator's state lost). The
    /// ABORT marker carries the producer's epoch here (or `producer_epoch`, which must
    /// match it). A transaction the coordinator is running is refused
    /// (INVALID_TXN_STATE): aborting one of its partitions would tear it.
    pub async fn abort_hanging_transaction(
        &self,
        topic: &str,
        partition: u32,
        producer_id: i64,
        producer_epoch: Option<i16>,
        coordinator_epoch: i32,
    ) -> Result<(), BrokerError> {
        let refuse = |code: ErrorCode, message: String| BrokerError::Transaction { code, message };
        let p = self.leader_partition(topic, partition)?;
        let producer = p
            .describe_producers()
            .into_iter()
            .find(|d| d.producer_id == producer_id && d.open_transaction_start.is_some())
            .ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidTxnState,
                    format!(
                        "producer {producer_id} has no open transaction in {topic}-{partition}"
                    ),
                )
            })?;
        if producer_epoch.is_some_and(|e| e != producer.epoch) {
            return Err(refuse(
                ErrorCode::InvalidProducerEpoch,
                format!(
                    "producer {producer_id} is at epoch {} in {topic}-{partition}",
                    producer.epoch
                ),
            ));
        }
        let state = self.metadata();
        if let Some(txn) = state
            .as_ref()
            .and_then(|s| s.coordinated_transaction(producer_id, topic, partition))
        {
            return Err(refuse(
                ErrorCode::InvalidTxnState,
                format!(
                    "transactional id {} has this transaction {} and its coordinator ends it",
                    txn.transactional_id,
                    txn.state.as_str()
                ),
            ));
        }
        tracing::warn!(
            topic,
            partition,
            producer_id,
            epoch = producer.epoch,
            "aborting a hanging transaction on an admin's request"
        );
        let marker = TxnMarker {
            producer_id,
            producer_epoch: producer.epoch,
            commit: false,
            coordinator_epoch,
        };
        self.write_marker(topic, partition, marker, HANGING_ABORT_TIMEOUT)
            .await
    }
}

/// How long an admin's abort of a hanging transaction waits for the ISR.
const HANGING_ABORT_TIMEOUT: Duration = Duration::from_secs(30);
