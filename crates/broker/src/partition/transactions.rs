//! A partition's transactions: the LSO and aborted transactions readers get, the
//! coordinator's markers appended as leader (and replicated ones recorded), and the
//! verification of a transaction's first write here (KIP-890). The state itself is the
//! producer state's `TransactionIndex`.

use bytes::Bytes;
use rill_common::record::{control_batch, read_control, BatchHeader, ControlMarker};

use super::{Appended, Partition};
use crate::producer_state::{ProducerDescription, ProducerStateTable, SequenceCheck};
use crate::transactions::AbortedTxn;
use crate::BrokerError;

impl Partition {
    /// LSO = min(first offset of an open transaction, `high_watermark`).
    pub(super) fn last_stable_offset(&self, high_watermark: u64) -> u64 {
        self.producers()
            .transactions()
            .last_stable_offset(high_watermark)
    }

    /// The aborted transactions whose records overlap `start..end` (what a
    /// read_committed fetch of that range returns).
    pub fn aborted_between(&self, start: u64, end: u64) -> Vec<AbortedTxn> {
        self.producers().transactions().aborted_between(start, end)
    }

    /// The producers with a transaction open here and where each began.
    pub fn open_transactions(&self) -> Vec<(i64, u64)> {
        self.producers()
            .transactions()
            .open_transactions()
            .collect()
    }

    /// Every producer this partition remembers.
    pub fn describe_producers(&self) -> Vec<ProducerDescription> {
        self.producers().describe()
    }

    /// Appends a transaction marker (the coordinator's COMMIT or ABORT for `producer_id`)
    /// as the leader. A marker of an epoch older than the producer's here is refused
    /// (INVALID_PRODUCER_EPOCH): a newer decision already passed.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        timestamp_ms: i64,
    ) -> Result<Appended, BrokerError> {
        let role = self.role().clone();
        if role.leader != Some(self.broker_id) {
            return Err(self.not_leader());
        }
        let mut producers = self.producers();
        producers.check_marker(producer_id, producer_epoch)?;
        let mut batch = control_batch(producer_id, producer_epoch, marker, timestamp_ms);
        let header = self.log.append_as_leader(&mut batch, role.leader_epoch)?;
        if let Some(aborted) = producers.record_marker(&header, Some(marker)) {
            self.log.put_aborted(&aborted)?;
        }
        Ok(Appended {
            base_offset: header.base_offset,
            next_offset: header.next_offset(),
            duplicate: false,
        })
    }

    /// Records a replicated batch in the producer state (a control batch with its
    /// marker); returns the transaction an ABORT marker aborted.
    pub(super) fn record_replicated(
        producers: &mut ProducerStateTable,
        header: &BatchHeader,
        batch: &[u8],
    ) -> Option<AbortedTxn> {
        if header.is_control() {
            let marker = match read_control(header, &Bytes::copy_from_slice(batch)) {
                Ok(marker) => marker,
                Err(e) => {
                    tracing::warn!(offset = header.base_offset, "unreadable control batch: {e}");
                    None
                }
            };
            producers.record_marker(header, marker)
        } else {
            producers.record(header);
            None
        }
    }

    /// Whether `header` (a batch a producer sent) is its transaction's first write here,
    /// to be verified with the coordinator before it is appended.
    pub fn needs_verification(&self, header: &BatchHeader) -> bool {
        self.producers().needs_verification(header)
    }

    /// What the producer state says of a batch before it is appended (epoch, sequence).
    pub fn check_sequence(&self, header: &BatchHeader) -> Result<SequenceCheck, BrokerError> {
        self.producers().check(header)
    }

    /// Whether a producer's batch waits for earlier sequences (`ProducerStateTable::is_ahead`).
    pub fn sequence_ahead(&self, header: &BatchHeader) -> bool {
        self.producers().is_ahead(header)
    }

    /// Starts verifying `producer_id`'s first write (a marker meanwhile cancels it).
    pub fn begin_verification(&self, producer_id: i64) -> u64 {
        self.producers().begin_verification(producer_id)
    }

    /// Retention moved the log start: forget aborted transactions below it.
    pub fn forget_transactions_before(&self, log_start: u64) {
        self.producers().forget_before(log_start);
    }
}
