//! Idempotent producers, per partition and free of I/O: for every producer id, its epoch
//! and its last five batches' sequence ranges and offsets. A batch that repeats one of
//! them is a retry and gets the original offsets; a gap in the sequence is
//! OUT_OF_ORDER_SEQUENCE; an older epoch is a fenced producer. The table is rebuilt
//! from the batch headers in the log (they carry producer id, epoch and sequence), so
//! every replica that holds the same log holds the same table.

use std::collections::{HashMap, VecDeque};

use rill_common::record::{BatchHeader, NO_PRODUCER_ID};

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

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
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

#[derive(Debug, Clone, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn last_sequence(h: &BatchHeader) -> i32 {
    h.base_sequence.wrapping_add(h.last_offset_delta)
}

impl ProducerStateTable {
    /// Rebuilds the table from a log's batch headers, oldest first.
    pub fn rebuild<'a>(headers: impl IntoIterator<Item = &'a BatchHeader>) -> Self {
        let mut table = Self::default();
        for h in headers {
            table.record(h);
        }
        table
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

    /// Remembers an appended batch (`header` with its offsets stamped).
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
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
    fn only_the_last_five_batches_are_remembered_and_the_table_rebuilds_from_headers() {
        let headers: Vec<BatchHeader> = (0..7).map(|i| batch(9, 0, i, 1, i as u64)).collect();
        let t = ProducerStateTable::rebuild(&headers);
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
