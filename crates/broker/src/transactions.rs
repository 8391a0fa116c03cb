//! A partition's transactions, free of I/O: which producers have a transaction open here
//! (from their first transactional batch to their marker), the last stable offset (LSO)
//! that follows from them, and the index of aborted transactions that read_committed
//! fetches return. Like the producer state it is derived from the log (batch headers and
//! the markers' control records), so every replica holding the same log holds the same
//! index, and it is rebuilt by replaying the log.

use std::collections::BTreeMap;

use rill_common::record::{BatchHeader, ControlMarker, ControlType};

/// An aborted transaction of one producer: its records lie in `first_offset..last_offset`
/// and its ABORT marker is at `last_offset` (Kafka's AbortedTxn; fetches report the
/// producer id and first offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: u64,
    pub last_offset: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionIndex {
    /// producer id -> the offset of its open transaction's first batch here.
    open: BTreeMap<i64, u64>,
    /// Aborted transactions in the order of their markers.
    aborted: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Records an appended batch (oldest first); `marker` is the control record of a
    /// control batch (`None` for a data batch, or a control type this version skips).
    /// Returns the transaction an ABORT marker aborted.
    pub fn record(
        &mut self,
        header: &BatchHeader,
        marker: Option<ControlMarker>,
    ) -> Option<AbortedTxn> {
        if !header.is_transactional() {
            return None;
        }
        if !header.is_control() {
            self.open
                .entry(header.producer_id)
                .or_insert(header.base_offset);
            return None;
        }
        let marker = marker?;
        let first = self.open.remove(&header.producer_id);
        if let (ControlType::Abort, Some(first_offset)) = (marker.kind, first) {
            assert!(
                self.aborted
                    .last()
                    .is_none_or(|a| a.last_offset < header.base_offset),
                "markers are recorded in offset order"
            );
            let aborted = AbortedTxn {
                producer_id: header.producer_id,
                first_offset,
                last_offset: header.base_offset,
            };
            self.aborted.push(aborted);
            return Some(aborted);
        }
        None
    }

    /// An index of `aborted` (stored, in marker order) and no open transaction.
    pub fn of_aborted(aborted: Vec<AbortedTxn>) -> Self {
        debug_assert!(aborted
            .windows(2)
            .all(|w| w[0].last_offset < w[1].last_offset));
        Self {
            open: BTreeMap::new(),
            aborted,
        }
    }

    /// The first offset a read_committed consumer may not read yet: the start of the
    /// oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<u64> {
        self.open.values().min().copied()
    }

    /// LSO = min(first offset of any open transaction, HW).
    pub fn last_stable_offset(&self, high_watermark: u64) -> u64 {
        self.first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Where `producer_id`'s open transaction here began, if one is open.
    pub fn open_since(&self, producer_id: i64) -> Option<u64> {
        self.open.get(&producer_id).copied()
    }

    /// Whether `producer_id` has a transaction open here.
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// Producers with a transaction open here, and where each began.
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.open.iter().map(|(p, o)| (*p, *o))
    }

    /// The aborted transactions whose records overlap `start..end`: what a
    /// read_committed fetch of that range returns so the client drops their batches.
    pub fn aborted_between(&self, start: u64, end: u64) -> Vec<AbortedTxn> {
        // Markers are in offset order: skip those before the range.
        let from = self.aborted.partition_point(|a| a.last_offset < start);
        self.aborted[from..]
            .iter()
            .filter(|a| a.first_offset < end)
            .copied()
            .collect()
    }

    /// Every aborted transaction still indexed, in marker order.
    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// A snapshot's open transaction.
    pub fn restore_open(&mut self, producer_id: i64, first_offset: u64) {
        self.open.insert(producer_id, first_offset);
    }

    /// A snapshot's aborted transaction; they come in marker order.
    pub fn restore_aborted(&mut self, aborted: AbortedTxn) -> Result<(), &'static str> {
        if self
            .aborted
            .last()
            .is_some_and(|a| a.last_offset >= aborted.last_offset)
            || aborted.first_offset > aborted.last_offset
        {
            return Err("aborted transactions out of order");
        }
        self.aborted.push(aborted);
        Ok(())
    }

    /// Adds the aborted transactions of `earlier` whose marker is below `offset` and
    /// that this index does not hold (one marker offset is one transaction).
    pub fn merge_aborted_before(&mut self, earlier: &TransactionIndex, offset: u64) {
        let known: std::collections::HashSet<u64> =
            self.aborted.iter().map(|a| a.last_offset).collect();
        let mut added = false;
        for a in earlier
            .aborted
            .iter()
            .take_while(|a| a.last_offset < offset)
        {
            if !known.contains(&a.last_offset) {
                self.aborted.push(*a);
                added = true;
            }
        }
        if added {
            self.aborted.sort_by_key(|a| a.last_offset);
        }
    }

    /// Forgets aborted transactions that retention deleted entirely (their marker is
    /// below the new log start).
    pub fn forget_before(&mut self, log_start: u64) {
        let keep_from = self.aborted.partition_point(|a| a.last_offset < log_start);
        self.aborted.drain(..keep_from);
    }
}

#[cfg(test)]
mod tests {
    use rill_common::record::{control_batch, read_control, RecordBatchBuilder};

    use super::*;

    /// Appends a batch of `count` records at `offset` and records it.
    fn data(index: &mut TransactionIndex, producer_id: i64, offset: u64, count: usize) {
        let mut b = RecordBatchBuilder::new();
        b.producer_id = producer_id;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.transactional = true;
        for _ in 0..count {
            b.push(None, Some(b"v"), 0);
        }
        let mut batch = b.build();
        rill_common::record::set_base_offset(&mut batch, offset);
        let header = BatchHeader::parse(&batch).unwrap_or_else(|e| panic!("{e}"));
        index.record(&header, None);
    }

    fn marker(index: &mut TransactionIndex, producer_id: i64, offset: u64, kind: ControlType) {
        let m = ControlMarker {
            kind,
            coordinator_epoch: 0,
        };
        let mut batch = control_batch(producer_id, 1, m, 0);
        rill_common::record::set_base_offset(&mut batch, offset);
        let header = BatchHeader::parse(&batch).unwrap_or_else(|e| panic!("{e}"));
        let read = read_control(&header, &bytes::Bytes::from(batch));
        index.record(&header, read.unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn the_lso_stops_at_the_oldest_open_transaction_and_moves_when_it_ends() {
        let mut index = TransactionIndex::default();
        assert_eq!(index.last_stable_offset(10), 10);
        data(&mut index, 1, 10, 3); // 10..13
        data(&mut index, 2, 13, 2); // 13..15
        data(&mut index, 1, 15, 1); // still producer 1's transaction from 10
        assert_eq!(index.last_stable_offset(16), 10);
        assert_eq!(index.last_stable_offset(5), 5, "never above the HW");
        marker(&mut index, 1, 16, ControlType::Commit);
        assert_eq!(index.last_stable_offset(17), 13);
        marker(&mut index, 2, 17, ControlType::Commit);
        assert_eq!(index.last_stable_offset(18), 18);
        assert!(
            index.aborted_between(0, 100).is_empty(),
            "commits are not indexed"
        );
    }

    #[test]
    fn aborted_transactions_are_indexed_and_found_by_the_ranges_they_overlap() {
        let mut index = TransactionIndex::default();
        data(&mut index, 1, 0, 5); // 0..5
        marker(&mut index, 1, 5, ControlType::Abort);
        data(&mut index, 2, 6, 4); // 6..10
        data(&mut index, 3, 10, 2); // 10..12
        marker(&mut index, 2, 12, ControlType::Abort);
        marker(&mut index, 3, 13, ControlType::Commit);
        let a1 = AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 5,
        };
        let a2 = AbortedTxn {
            producer_id: 2,
            first_offset: 6,
            last_offset: 12,
        };
        assert_eq!(index.aborted_between(0, 14), vec![a1, a2]);
        assert_eq!(index.aborted_between(3, 4), vec![a1]);
        assert_eq!(index.aborted_between(6, 7), vec![a2]);
        assert_eq!(
            index.aborted_between(12, 14),
            vec![a2],
            "its marker is in range"
        );
        assert!(index.aborted_between(13, 20).is_empty());
        index.forget_before(6);
        assert_eq!(index.aborted_between(0, 14), vec![a2]);
    }

    #[test]
    fn a_rebuilt_tail_keeps_the_aborted_transactions_before_it() {
        let mut whole = TransactionIndex::default();
        data(&mut whole, 1, 0, 2);
        marker(&mut whole, 1, 2, ControlType::Abort);
        data(&mut whole, 2, 3, 2);
        marker(&mut whole, 2, 5, ControlType::Abort);
        // Rebuilt from offset 3 on: it knows the second abort only.
        let mut tail = TransactionIndex::default();
        data(&mut tail, 2, 3, 2);
        marker(&mut tail, 2, 5, ControlType::Abort);
        tail.merge_aborted_before(&whole, 3);
        assert_eq!(tail.aborted(), whole.aborted());
        // Merged again (the stored index, then the table before a truncation): no
        // transaction twice, none missing.
        tail.merge_aborted_before(&whole, 3);
        assert_eq!(tail.aborted(), whole.aborted());
        // Truncated at 4: the second abort is gone, its data is open again.
        let mut cut = TransactionIndex::default();
        data(&mut cut, 2, 3, 1);
        cut.merge_aborted_before(&whole, 3);
        assert_eq!(cut.aborted(), &whole.aborted()[..1]);
        assert_eq!(cut.first_unstable_offset(), Some(3));
    }

    #[test]
    fn a_marker_without_data_here_and_non_transactional_batches_change_nothing() {
        let mut index = TransactionIndex::default();
        marker(&mut index, 9, 0, ControlType::Abort);
        let mut b = RecordBatchBuilder::new();
        b.push(None, Some(b"plain"), 0);
        let batch = b.build();
        let header = BatchHeader::parse(&batch).unwrap_or_else(|e| panic!("{e}"));
        index.record(&header, None);
        assert_eq!(index, TransactionIndex::default());
    }
}
