//! The aborted-transaction index as the log stores it: one meta entry per aborted
//! transaction (key `aborted/` + its ABORT marker's offset, big-endian; value its
//! producer id and first offset), written when the marker is appended or replicated
//! and cut with the log (truncation, retention). read_committed readers of old data
//! thus know every aborted transaction however the producer state was rebuilt (a
//! missing or stale snapshot rebuilds it from a window of the log only).

use super::partition_log::PartitionLog;
use crate::transactions::AbortedTxn;
use crate::BrokerError;

pub(super) const ABORTED_PREFIX: &[u8] = b"aborted/";

fn aborted_key(last_offset: u64) -> Vec<u8> {
    let mut key = ABORTED_PREFIX.to_vec();
    key.extend_from_slice(&last_offset.to_be_bytes());
    key
}

fn decode(key: &[u8], value: &[u8]) -> Option<AbortedTxn> {
    let last_offset = u64::from_be_bytes(key.get(ABORTED_PREFIX.len()..)?.try_into().ok()?);
    let producer_id = i64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let first_offset = u64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some(AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
    })
}

impl PartitionLog {
    /// Stores an aborted transaction (its ABORT marker is in the log).
    pub fn put_aborted(&self, aborted: &AbortedTxn) -> Result<(), BrokerError> {
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&aborted.producer_id.to_be_bytes());
        value.extend_from_slice(&aborted.first_offset.to_be_bytes());
        self.backend()
            .meta_put(&aborted_key(aborted.last_offset), &value)
    }

    /// Every stored aborted transaction whose marker is in the log, in marker order. An
    /// entry whose marker is not (a tail cut on recovery) is removed.
    pub fn aborted_transactions(&self) -> Result<Vec<AbortedTxn>, BrokerError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let mut all = Vec::new();
        for (key, value) in self.backend().meta_scan(ABORTED_PREFIX)? {
            match decode(&key, &value) {
                Some(a) if (start..end).contains(&a.last_offset) => all.push(a),
                _ => self.backend().meta_remove(&key)?,
            }
        }
        all.sort_by_key(|a| a.last_offset);
        Ok(all)
    }

    /// Removes the stored aborted transactions whose marker offset fails `keep`.
    pub(super) fn remove_aborted_unless(
        &self,
        keep: impl Fn(u64) -> bool,
    ) -> Result<(), BrokerError> {
        for (key, value) in self.backend().meta_scan(ABORTED_PREFIX)? {
            if decode(&key, &value).is_none_or(|a| !keep(a.last_offset)) {
                self.backend().meta_remove(&key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryBackend;
    use rill_common::record::RecordBatchBuilder;

    fn append(log: &PartitionLog, records: usize) {
        let mut b = RecordBatchBuilder::new();
        for _ in 0..records {
            b.push(None, Some(b"v"), 0);
        }
        let mut batch = b.build();
        assert!(log.append_as_leader(&mut batch, 0).is_ok());
    }

    fn aborted(first_offset: u64, last_offset: u64) -> AbortedTxn {
        AbortedTxn {
            producer_id: 7,
            first_offset,
            last_offset,
        }
    }

    #[test]
    fn stored_aborted_transactions_are_cut_with_the_log() {
        let Ok((log, _)) =
            PartitionLog::open(Box::new(std::sync::Arc::new(MemoryBackend::default())))
        else {
            panic!("open");
        };
        for _ in 0..10 {
            append(&log, 1);
        }
        for a in [aborted(0, 2), aborted(3, 5), aborted(6, 8)] {
            assert!(log.put_aborted(&a).is_ok());
        }
        assert_eq!(
            log.aborted_transactions().ok(),
            Some(vec![aborted(0, 2), aborted(3, 5), aborted(6, 8)])
        );
        assert!(log.truncate_to(6).is_ok());
        assert_eq!(
            log.aborted_transactions().ok(),
            Some(vec![aborted(0, 2), aborted(3, 5)]),
            "a truncation removes the transactions whose marker it cut"
        );
        assert!(log.delete_before(3).is_ok());
        assert_eq!(
            log.aborted_transactions().ok(),
            Some(vec![aborted(3, 5)]),
            "retention removes those whose marker it deleted"
        );
        // An entry past the log end (its marker lost with a torn tail) is dropped.
        assert!(log.put_aborted(&aborted(6, 20)).is_ok());
        assert_eq!(log.aborted_transactions().ok(), Some(vec![aborted(3, 5)]));
    }
}
