//! What a consumer takes from one partition's fetched bytes: the records of data
//! batches from its position on, without control batches (transaction markers) and,
//! for read_committed, without the batches of aborted transactions (Kafka's consumer
//! algorithm: a producer's batches are dropped from the first offset of its aborted
//! transaction until its ABORT marker). It also says where the next fetch starts, past
//! whatever was dropped.

use std::collections::HashSet;

use bytes::Bytes;
use rill_common::record::{read_control, split_batches, ControlType, Record, RecordError};

/// An aborted transaction as a fetch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: u64,
}

/// The records to deliver and the offset after the last batch read (`None`: nothing
/// read).
pub fn records_of(
    bytes: &Bytes,
    position: u64,
    aborted: &[AbortedTxn],
) -> Result<(Vec<Record>, Option<u64>), RecordError> {
    let mut aborted: Vec<AbortedTxn> = aborted.to_vec();
    aborted.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut records = Vec::new();
    let mut next = None;
    for (header, batch) in split_batches(bytes)? {
        next = Some(header.next_offset());
        while aborted
            .last()
            .is_some_and(|a| a.first_offset <= header.last_offset())
        {
            if let Some(a) = aborted.pop() {
                aborting.insert(a.producer_id);
            }
        }
        if header.is_control() {
            if let Some(marker) = read_control(&header, &batch)? {
                if marker.kind == ControlType::Abort {
                    aborting.remove(&header.producer_id);
                }
            }
            continue;
        }
        if header.is_transactional() && aborting.contains(&header.producer_id) {
            continue;
        }
        records.extend(
            header
                .records(&batch)?
                .into_iter()
                .filter(|r| r.offset >= position),
        );
    }
    Ok((records, next))
}

#[cfg(test)]
mod tests {
    use rill_common::record::{control_batch, set_base_offset, ControlMarker, RecordBatchBuilder};

    use super::*;

    fn data(out: &mut Vec<u8>, producer_id: i64, transactional: bool, offset: u64, n: usize) {
        let mut b = RecordBatchBuilder::new();
        b.producer_id = producer_id;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.transactional = transactional;
        for i in 0..n {
            b.push(None, Some(format!("{producer_id}-{i}").as_bytes()), 0);
        }
        let mut batch = b.build();
        set_base_offset(&mut batch, offset);
        out.extend_from_slice(&batch);
    }

    fn marker(out: &mut Vec<u8>, producer_id: i64, offset: u64, kind: ControlType) {
        let marker = ControlMarker {
            kind,
            coordinator_epoch: 0,
        };
        let mut batch = control_batch(producer_id, 0, marker, 0);
        set_base_offset(&mut batch, offset);
        out.extend_from_slice(&batch);
    }

    #[test]
    fn aborted_batches_and_markers_are_dropped_and_the_position_passes_them() {
        let mut log = Vec::new();
        data(&mut log, 1, true, 0, 2); // 0..2 aborted
        data(&mut log, 2, true, 2, 2); // 2..4 committed
        data(&mut log, -1, false, 4, 1); // 4 plain
        marker(&mut log, 1, 5, ControlType::Abort);
        marker(&mut log, 2, 6, ControlType::Commit);
        data(&mut log, 1, true, 7, 1); // 7: producer 1's next transaction, committed
        marker(&mut log, 1, 8, ControlType::Commit);
        let aborted = [AbortedTxn {
            producer_id: 1,
            first_offset: 0,
        }];
        let (records, next) =
            records_of(&Bytes::from(log.clone()), 0, &aborted).unwrap_or_else(|e| panic!("{e}"));
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![2, 3, 4, 7]);
        assert_eq!(next, Some(9));
        // read_uncommitted: no aborted list, only markers are dropped.
        let (records, _) = records_of(&Bytes::from(log), 3, &[]).unwrap_or_else(|e| panic!("{e}"));
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![3, 4, 7]);
    }

    #[test]
    fn a_fetch_of_markers_only_still_moves_the_position() {
        let mut log = Vec::new();
        marker(&mut log, 1, 10, ControlType::Commit);
        let (records, next) =
            records_of(&Bytes::from(log), 10, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(records.is_empty());
        assert_eq!(next, Some(11));
    }
}
