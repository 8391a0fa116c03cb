//! What a partition serves to readers: batches below the high watermark and offset
//! lookups by timestamp (ListOffsets).

use bytes::Bytes;
use rill_common::record::BatchHeader;

use rill_common::transaction::IsolationLevel;

use super::{Offsets, Partition};
use crate::BrokerError;

/// The offset a consumer with `isolation` reads up to (exclusive).
pub fn consumer_bound(isolation: IsolationLevel, offsets: &Offsets) -> u64 {
    match isolation {
        IsolationLevel::ReadCommitted => offsets.last_stable_offset,
        IsolationLevel::ReadUncommitted => offsets.high_watermark,
        IsolationLevel::ReadLatest => offsets.log_end,
    }
}

impl Partition {
    /// Batches a consumer reads from `offset` with `isolation`: below the last stable
    /// offset (read_committed), the high watermark (read_uncommitted) or the log end
    /// (read_latest); `offsets` is what the caller reported (so the bound matches).
    pub fn read_for_consumer(
        &self,
        offset: u64,
        isolation: IsolationLevel,
        offsets: &Offsets,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, BrokerError> {
        self.log
            .read(offset, consumer_bound(isolation, offsets), max_bytes)
    }

    /// The first offset whose record timestamp is at least `timestamp_ms`, below the HW.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(u64, i64)>, BrokerError> {
        let hw = self.high_watermark();
        let mut from = self.log.log_start_offset();
        while from < hw {
            let headers = self.log.headers(from, 256)?;
            let Some(last) = headers.last().copied() else {
                break;
            };
            if let Some(h) = headers
                .iter()
                .find(|h| h.max_timestamp >= timestamp_ms && h.base_offset < hw)
            {
                let batches = self.log.read(h.base_offset.max(from), hw, 1)?;
                for batch in &batches {
                    for r in BatchHeader::validate(batch)?.records(batch)? {
                        if r.offset >= from && r.timestamp_ms >= timestamp_ms {
                            return Ok(Some((r.offset, r.timestamp_ms)));
                        }
                    }
                }
            }
            from = last.next_offset();
        }
        Ok(None)
    }

    /// The first record with the largest timestamp below the HW (ListOffsets -3).
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(u64, i64)>, BrokerError> {
        let hw = self.high_watermark();
        let mut from = self.log.log_start_offset();
        let mut best: Option<BatchHeader> = None;
        while from < hw {
            let headers = self.log.headers(from, 256)?;
            let Some(last) = headers.last().copied() else {
                break;
            };
            for h in headers.iter().filter(|h| h.base_offset < hw) {
                if best.is_none_or(|b| h.max_timestamp > b.max_timestamp) {
                    best = Some(*h);
                }
            }
            from = last.next_offset();
        }
        let Some(best) = best else {
            return Ok(None);
        };
        for batch in &self.log.read(best.base_offset, hw, 1)? {
            for r in BatchHeader::validate(batch)?.records(batch)? {
                if r.timestamp_ms == best.max_timestamp {
                    return Ok(Some((r.offset, r.timestamp_ms)));
                }
            }
        }
        Ok(None)
    }
}
