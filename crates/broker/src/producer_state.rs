//! Idempotent producers, per partition and free of I/O: for every producer id, its epoch
//! and its last five batches' sequence ranges and offsets. A batch that repeats one of
//! them is a retry and gets the original offsets; a gap in the sequence is
//! OUT_OF_ORDER_SEQUENCE; an older epoch is a fenced producer. The table is rebuilt
//! from the batch headers in the log (they carry producer id, epoch and sequence), so
//! every replica that holds the same log holds the same table, and snapshotted (encoded
//! here, stored by the log) so that opening a partition replays only the batches after
//! the snapshot. The table also holds the partition's transactions (each producer's open
//! one and the aborted ones, [`TransactionIndex`]), kept and snapshotted with it.

use std::collections::{HashMap, VecDeque};

use rill_common::record::{BatchHeader, ControlMarker, NO_PRODUCER_ID};

use crate::transactions::{AbortedTxn, TransactionIndex};
use crate::BrokerError;

/// Batches remembered per producer (Kafka's max in-flight requests for idempotence).
pub const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchRange {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: u64,
    next_offset: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// The newest batch's max timestamp: what expiry goes by.
    last_timestamp: i64,
    batches: VecDeque<BatchRange>,
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it.
    Append,
    /// A retry of a stored batch: answer with its offsets, store nothing.
    Duplicate { base_offset: u64, next_offset: u64 },
}

/// One producer as a partition knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub epoch: i16,
    /// The last sequence number stored; -1 when none (only markers).
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// Where its open transaction here began, if one is open.
    pub open_transaction_start: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    transactions: TransactionIndex,
    /// Transactional first writes being verified with the coordinator: producer id ->
    /// the guard the write must still find (a marker in between removes it). Not
    /// snapshotted: a new leader verifies again.
    verifications: HashMap<i64, u64>,
    next_guard: u64,
}

fn last_sequence(h: &BatchHeader) -> i32 {
    h.base_sequence.wrapping_add(h.last_offset_delta)
}

impl ProducerStateTable {
    /// Rebuilds the table from a log's batch headers, oldest first (`marker_of` reads a
    /// control batch's marker).
    pub fn rebuild<'a>(
        headers: impl IntoIterator<Item = &'a BatchHeader>,
        marker_of: impl FnMut(&BatchHeader) -> Option<ControlMarker>,
    ) -> Self {
        let mut table = Self::default();
        table.replay(headers, marker_of);
        table
    }

    /// Records stored batches, oldest first (a snapshot's successors, or a whole tail);
    /// `marker_of` reads a control batch's marker.
    pub fn replay<'a>(
        &mut self,
        headers: impl IntoIterator<Item = &'a BatchHeader>,
        mut marker_of: impl FnMut(&BatchHeader) -> Option<ControlMarker>,
    ) {
        for h in headers {
            if h.is_control() {
                self.record_marker(h, marker_of(h));
            } else {
                self.record(h);
            }
        }
    }

    /// Whether `h` is a transaction's first write here: the leader verifies it with the
    /// transaction coordinator before appending it (KIP-890), so a write that arrives
    /// after its transaction ended cannot open a transaction nobody will end.
    pub fn needs_verification(&self, h: &BatchHeader) -> bool {
        h.is_transactional() && !h.is_control() && !self.transactions.is_open(h.producer_id)
    }

    /// Starts verifying `producer_id`'s first write; the append names the guard.
    pub fn begin_verification(&mut self, producer_id: i64) -> u64 {
        self.next_guard += 1;
        self.verifications.insert(producer_id, self.next_guard);
        self.next_guard
    }

    /// A first write may be appended only with the guard of a verification that no
    /// marker ended since it began.
    pub fn check_verified(&self, h: &BatchHeader, guard: Option<u64>) -> Result<(), BrokerError> {
        if !self.needs_verification(h) {
            return Ok(());
        }
        match guard {
            Some(g) if self.verifications.get(&h.producer_id) == Some(&g) => Ok(()),
            _ => Err(BrokerError::Transaction {
                code: rill_common::ErrorCode::InvalidTxnState,
                message: format!(
                    "producer {}'s transaction is not verified to include this partition \
                     (or ended meanwhile)",
                    h.producer_id
                ),
            }),
        }
    }

    /// Every producer this partition remembers (Kafka's DescribeProducers), by id.
    pub fn describe(&self) -> Vec<ProducerDescription> {
        let mut all: Vec<ProducerDescription> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerDescription {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: e.last_timestamp,
                open_transaction_start: self.transactions.open_since(*id),
            })
            .collect();
        all.sort_by_key(|d| d.producer_id);
        all
    }

    /// The partition's open and aborted transactions.
    pub fn transactions(&self) -> &TransactionIndex {
        &self.transactions
    }

    /// Forgets what retention deleted (aborted transactions whose marker is below
    /// `log_start`).
    pub fn forget_before(&mut self, log_start: u64) {
        self.transactions.forget_before(log_start);
    }

    /// Keeps the aborted transactions of `earlier` that end before `offset` and that
    /// this table (rebuilt from `offset` on) does not know: a truncation or a rebuild
    /// from a window keeps the index of the log below it.
    pub fn keep_aborted_before(&mut self, earlier: &TransactionIndex, offset: u64) {
        self.transactions.merge_aborted_before(earlier, offset);
    }

    /// Decides on a transaction marker before the leader appends it: a marker of an
    /// older epoch than the producer's is from a fenced coordinator decision.
    pub fn check_marker(&self, producer_id: i64, producer_epoch: i16) -> Result<(), BrokerError> {
        match self.producers.get(&producer_id) {
            Some(entry) if producer_epoch < entry.epoch => {
                Err(BrokerError::InvalidProducerEpoch(format!(
                    "a marker of producer {producer_id} at epoch {producer_epoch}, older than {}",
                    entry.epoch
                )))
            }
            _ => Ok(()),
        }
    }

    /// Remembers an appended control batch: it ends its producer's transaction here
    /// and carries the producer's epoch from then on (KIP-890 bumps it at every end; a
    /// newer epoch starts its sequences at 0). Returns the transaction an ABORT marker
    /// aborted (for the log's stored index).
    pub fn record_marker(
        &mut self,
        h: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> Option<AbortedTxn> {
        debug_assert!(h.is_control(), "record_marker of a data batch");
        let aborted = self.transactions.record(h, marker);
        self.verifications.remove(&h.producer_id);
        let entry = self.producers.entry(h.producer_id).or_default();
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        aborted
    }

    /// Decides on a batch before it is appended (`header` as the producer sent it).
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, BrokerError> {
        if h.producer_id == NO_PRODUCER_ID {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(BrokerError::UnknownProducerId(format!(
                    "producer {} is unknown here and starts at sequence {}, not 0",
                    h.producer_id, h.base_sequence
                )))
            };
        };
        if h.producer_epoch < entry.epoch {
            return Err(BrokerError::InvalidProducerEpoch(format!(
                "producer {} epoch {} is older than {}: a newer instance exists",
                h.producer_id, h.producer_epoch, entry.epoch
            )));
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(BrokerError::OutOfOrderSequence(format!(
                    "a new epoch {} of producer {} must start at sequence 0",
                    h.producer_epoch, h.producer_id
                )))
            };
        }
        let last = last_sequence(h);
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == h.base_sequence && b.last_sequence == last)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: b.base_offset,
                next_offset: b.next_offset,
            });
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |b| b.last_sequence.wrapping_add(1));
        if h.base_sequence == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(BrokerError::OutOfOrderSequence(format!(
                "producer {} sent sequence {}, expected {expected}",
                h.producer_id, h.base_sequence
            )))
        }
    }

    /// Whether `h` is refused only because batches before it are missing: its sequence
    /// is ahead of the next one expected in the producer's epoch (or of 0 in a newer
    /// epoch or for a producer unknown here). A pipelining producer's earlier batches
    /// may still be on their way, so the leader waits for them a while.
    pub fn is_ahead(&self, h: &BatchHeader) -> bool {
        if h.producer_id == NO_PRODUCER_ID {
            return false;
        }
        let expected = match self.producers.get(&h.producer_id) {
            None => 0,
            Some(entry) if h.producer_epoch > entry.epoch => 0,
            Some(entry) if h.producer_epoch < entry.epoch => return false,
            Some(entry) => entry
                .batches
                .back()
                .map_or(0, |b| b.last_sequence.wrapping_add(1)),
        };
        h.base_sequence.wrapping_sub(expected) > 0
    }

    /// Remembers an appended data batch (`header` with its offsets stamped).
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        if h.is_control() {
            // A marker whose record this caller did not read: the epoch still counts.
            self.record_marker(h, None);
            return;
        }
        self.transactions.record(h, None);
        if h.is_transactional() {
            self.verifications.remove(&h.producer_id);
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        entry.batches.push_back(BatchRange {
            first_sequence: h.base_sequence,
            last_sequence: last_sequence(h),
            base_offset: h.base_offset,
            next_offset: h.next_offset(),
        });
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.producers.len()
    }

    /// Forgets producers whose newest batch is older than `cutoff_ms` (Kafka's
    /// `producer.id.expiration.ms`): such a producer's next batch gets
    /// UNKNOWN_PRODUCER_ID and its client starts over with a new id.
    pub fn expire_older_than(&mut self, cutoff_ms: i64) {
        let open: Vec<i64> = self
            .transactions
            .open_transactions()
            .map(|(p, _)| p)
            .collect();
        // A producer with a transaction open here stays (its marker must find it).
        self.producers
            .retain(|id, e| e.last_timestamp >= cutoff_ms || open.contains(id));
    }

    /// The snapshot format: version, producer count, per producer its id, epoch, last
    /// timestamp and batches; the open transactions (count, producer id and first
    /// offset each), the aborted ones (count, producer id, first and last offset each);
    /// then a CRC32C of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(5 + self.producers.len() * (19 + 24 * REMEMBERED_BATCHES) + 4);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.next_offset.to_be_bytes());
            }
        }
        let open: Vec<(i64, u64)> = self.transactions.open_transactions().collect();
        out.extend_from_slice(&(open.len() as u32).to_be_bytes());
        for (producer_id, first_offset) in open {
            out.extend_from_slice(&producer_id.to_be_bytes());
            out.extend_from_slice(&first_offset.to_be_bytes());
        }
        let aborted = self.transactions.aborted();
        out.extend_from_slice(&(aborted.len() as u32).to_be_bytes());
        for a in aborted {
            out.extend_from_slice(&a.producer_id.to_be_bytes());
            out.extend_from_slice(&a.first_offset.to_be_bytes());
            out.extend_from_slice(&a.last_offset.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot written by [`encode`](Self::encode); a damaged one is an error
    /// (the caller rebuilds from the log instead).
    pub fn decode(bytes: &[u8]) -> Result<Self, BrokerError> {
        let bad = |why: &str| BrokerError::Storage(format!("producer snapshot: {why}"));
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| bad("too short"))?;
        if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Reader(body);
        if r.take::<1>()? != [SNAPSHOT_VERSION] {
            return Err(bad("unknown version"));
        }
        let count = u32::from_be_bytes(r.take()?);
        let mut table = Self::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let last_timestamp = i64::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::with_capacity(n as usize);
            for _ in 0..n {
                batches.push_back(BatchRange {
                    first_sequence: i32::from_be_bytes(r.take()?),
                    last_sequence: i32::from_be_bytes(r.take()?),
                    base_offset: u64::from_be_bytes(r.take()?),
                    next_offset: u64::from_be_bytes(r.take()?),
                });
            }
            let entry = ProducerEntry {
                epoch,
                last_timestamp,
                batches,
            };
            table.producers.insert(id, entry);
        }
        let open = u32::from_be_bytes(r.take()?);
        for _ in 0..open {
            let producer_id = i64::from_be_bytes(r.take()?);
            let first_offset = u64::from_be_bytes(r.take()?);
            table.transactions.restore_open(producer_id, first_offset);
        }
        let aborted = u32::from_be_bytes(r.take()?);
        for _ in 0..aborted {
            let a = AbortedTxn {
                producer_id: i64::from_be_bytes(r.take()?),
                first_offset: u64::from_be_bytes(r.take()?),
                last_offset: u64::from_be_bytes(r.take()?),
            };
            table.transactions.restore_aborted(a).map_err(&bad)?;
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(table)
    }
}

/// 2: with the transaction index (a version 1 snapshot is ignored and rebuilt).
const SNAPSHOT_VERSION: u8 = 2;

/// Fixed-size fields off the front of a snapshot.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BrokerError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| BrokerError::Storage("producer snapshot: truncated".into()))?;
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use rill_common::record::{self, RecordBatchBuilder};

    use super::*;

    fn batch(pid: i64, epoch: i16, sequence: i32, records: usize, base_offset: u64) -> BatchHeader {
        let mut b = RecordBatchBuilder::new();
        b.producer_id = pid;
        b.producer_epoch = epoch;
        b.base_sequence = sequence;
        for _ in 0..records {
            b.push(None, Some(b"v"), 1);
        }
        let mut buf = b.build();
        record::set_base_offset(&mut buf, base_offset);
        BatchHeader::parse(&buf).unwrap_or_else(|e| panic!("{e}"))
    }

    fn code(r: Result<SequenceCheck, BrokerError>) -> Option<rill_common::ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn sequences_continue_and_a_retry_gets_its_original_offsets() {
        let mut t = ProducerStateTable::default();
        let first = batch(7, 0, 0, 3, 10);
        assert_eq!(t.check(&first).ok(), Some(SequenceCheck::Append));
        t.record(&first);
        let second = batch(7, 0, 3, 2, 13);
        assert_eq!(t.check(&second).ok(), Some(SequenceCheck::Append));
        t.record(&second);
        assert_eq!(
            t.check(&batch(7, 0, 0, 3, 0)).ok(),
            Some(SequenceCheck::Duplicate {
                base_offset: 10,
                next_offset: 13
            })
        );
        assert_eq!(
            t.check(&batch(7, 0, 3, 2, 0)).ok(),
            Some(SequenceCheck::Duplicate {
                base_offset: 13,
                next_offset: 15
            })
        );
    }

    #[test]
    fn a_gap_an_unknown_producer_and_an_old_epoch_are_refused() {
        let mut t = ProducerStateTable::default();
        t.record(&batch(7, 1, 0, 3, 0));
        assert_eq!(
            code(t.check(&batch(7, 1, 5, 1, 0))),
            Some(rill_common::ErrorCode::OutOfOrderSequence)
        );
        assert_eq!(
            code(t.check(&batch(8, 0, 4, 1, 0))),
            Some(rill_common::ErrorCode::UnknownProducerId)
        );
        assert_eq!(
            code(t.check(&batch(7, 0, 3, 1, 0))),
            Some(rill_common::ErrorCode::InvalidProducerEpoch)
        );
        // A new epoch starts over at 0 and fences the old one.
        assert_eq!(
            t.check(&batch(7, 2, 0, 1, 3)).ok(),
            Some(SequenceCheck::Append)
        );
        t.record(&batch(7, 2, 0, 1, 3));
        assert_eq!(
            code(t.check(&batch(7, 1, 3, 1, 0))),
            Some(rill_common::ErrorCode::InvalidProducerEpoch)
        );
        // Producers without an id are not tracked.
        assert_eq!(
            t.check(&batch(NO_PRODUCER_ID, -1, -1, 1, 0)).ok(),
            Some(SequenceCheck::Append)
        );
    }

    #[test]
    fn a_batch_ahead_of_its_sequence_is_told_from_one_behind() {
        let mut t = ProducerStateTable::default();
        assert!(t.is_ahead(&batch(7, 0, 4, 1, 0)), "unknown producer past 0");
        assert!(!t.is_ahead(&batch(7, 0, 0, 4, 0)));
        t.record(&batch(7, 0, 0, 4, 0));
        assert!(t.is_ahead(&batch(7, 0, 6, 1, 0)), "a gap after sequence 3");
        assert!(
            !t.is_ahead(&batch(7, 0, 4, 1, 0)),
            "the next one is not ahead"
        );
        assert!(
            !t.is_ahead(&batch(7, 0, 2, 1, 0)),
            "an old one is not ahead"
        );
        assert!(t.is_ahead(&batch(7, 1, 3, 1, 0)), "a newer epoch past 0");
        assert!(!t.is_ahead(&batch(NO_PRODUCER_ID, -1, -1, 1, 0)));
    }

    #[test]
    fn a_snapshot_round_trips_and_a_damaged_one_is_refused() {
        let mut headers: Vec<BatchHeader> = (0..7)
            .map(|i| batch(9, 0, 2 * i, 2, 2 * i as u64))
            .collect();
        headers.push(batch(4, 3, 0, 1, 14));
        let table = ProducerStateTable::rebuild(&headers, |_| None);
        let bytes = table.encode();
        let decoded = ProducerStateTable::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded, table);
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded.check(&batch(9, 0, 12, 2, 0)).ok(),
            Some(SequenceCheck::Duplicate {
                base_offset: 12,
                next_offset: 14
            })
        );
        for damaged in [&bytes[..bytes.len() - 1], &bytes[1..], &[][..]] {
            assert!(ProducerStateTable::decode(damaged).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[7] ^= 1;
        assert!(ProducerStateTable::decode(&flipped).is_err());
        assert_eq!(
            ProducerStateTable::decode(&ProducerStateTable::default().encode()).ok(),
            Some(ProducerStateTable::default())
        );
    }

    #[test]
    fn producers_silent_past_the_expiration_are_forgotten() {
        let mut old = batch(1, 0, 0, 1, 0);
        old.max_timestamp = 1_000;
        let mut recent = batch(2, 0, 0, 1, 1);
        recent.max_timestamp = 5_000;
        let mut t = ProducerStateTable::rebuild([&old, &recent], |_| None);
        t.expire_older_than(2_000);
        assert_eq!(t.len(), 1);
        assert_eq!(
            code(t.check(&batch(1, 0, 1, 1, 0))),
            Some(rill_common::ErrorCode::UnknownProducerId)
        );
        assert_eq!(
            t.check(&batch(2, 0, 1, 1, 0)).ok(),
            Some(SequenceCheck::Append)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_the_table_rebuilds_from_headers() {
        let headers: Vec<BatchHeader> = (0..7).map(|i| batch(9, 0, i, 1, i as u64)).collect();
        let t = ProducerStateTable::rebuild(&headers, |_| None);
        assert_eq!(
            t.check(&batch(9, 0, 6, 1, 0)).ok(),
            Some(SequenceCheck::Duplicate {
                base_offset: 6,
                next_offset: 7
            })
        );
        assert_eq!(
            t.check(&batch(9, 0, 2, 1, 0)).ok(),
            Some(SequenceCheck::Duplicate {
                base_offset: 2,
                next_offset: 3
            })
        );
        assert_eq!(
            code(t.check(&batch(9, 0, 1, 1, 0))),
            Some(rill_common::ErrorCode::OutOfOrderSequence)
        );
        assert_eq!(
            t.check(&batch(9, 0, 7, 1, 0)).ok(),
            Some(SequenceCheck::Append)
        );
    }
}

#[cfg(test)]
mod transaction_tests {
    use rill_common::record::{
        self, control_batch, BatchHeader, ControlMarker, ControlType, RecordBatchBuilder,
    };
    use rill_common::ErrorCode;

    use super::*;

    fn txn_batch(pid: i64, epoch: i16, sequence: i32, base_offset: u64) -> BatchHeader {
        let mut b = RecordBatchBuilder::new();
        b.producer_id = pid;
        b.producer_epoch = epoch;
        b.base_sequence = sequence;
        b.transactional = true;
        b.push(None, Some(b"v"), 1);
        let mut buf = b.build();
        record::set_base_offset(&mut buf, base_offset);
        BatchHeader::parse(&buf).unwrap_or_else(|e| panic!("{e}"))
    }

    fn abort(pid: i64, epoch: i16, offset: u64) -> (BatchHeader, ControlMarker) {
        let marker = ControlMarker {
            kind: ControlType::Abort,
            coordinator_epoch: 1,
        };
        let mut buf = control_batch(pid, epoch, marker, 1);
        record::set_base_offset(&mut buf, offset);
        let header = BatchHeader::parse(&buf).unwrap_or_else(|e| panic!("{e}"));
        (header, marker)
    }

    #[test]
    fn a_first_transactional_write_needs_a_verification_no_marker_ended() {
        let mut t = ProducerStateTable::default();
        let first = txn_batch(9, 0, 0, 0);
        assert!(t.needs_verification(&first));
        let refused = t.check_verified(&first, None).err().map(|e| e.code());
        assert_eq!(refused, Some(ErrorCode::InvalidTxnState));
        let guard = t.begin_verification(9);
        assert!(t.check_verified(&first, Some(guard)).is_ok());
        t.record(&first);
        // The transaction is open here now: later writes need no verification.
        let second = txn_batch(9, 0, 1, 1);
        assert!(!t.needs_verification(&second));
        assert!(t.check_verified(&second, None).is_ok());
        t.record(&second);
        let (header, marker) = abort(9, 0, 2);
        t.record_marker(&header, Some(marker));
        assert_eq!(t.transactions().first_unstable_offset(), None);

        // A late write of the ended transaction, verified before the marker landed:
        // the marker cancelled its verification.
        let late = txn_batch(9, 0, 2, 3);
        let guard = t.begin_verification(9);
        let (header, marker) = abort(9, 0, 3);
        t.record_marker(&header, Some(marker));
        let refused = t.check_verified(&late, Some(guard)).err().map(|e| e.code());
        assert_eq!(refused, Some(ErrorCode::InvalidTxnState));
    }

    #[test]
    fn a_snapshot_keeps_open_and_aborted_transactions() {
        let mut t = ProducerStateTable::default();
        t.record(&txn_batch(1, 0, 0, 0));
        let (header, marker) = abort(1, 0, 1);
        t.record_marker(&header, Some(marker));
        t.record(&txn_batch(2, 0, 0, 2));
        let decoded = ProducerStateTable::decode(&t.encode()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.transactions(), t.transactions());
        assert_eq!(decoded.transactions().first_unstable_offset(), Some(2));
        assert_eq!(decoded.transactions().aborted_between(0, 10).len(), 1);
    }
}
