//! Offsets: ListOffsets (by isolation level), DeleteRecords, and a replica's offsets and
//! checksum (`rill replicas`).

use rill_common::transaction::IsolationLevel;
use tracing::info;

use crate::partition::{consumer_bound, Offsets};
use crate::BrokerError;

use super::ReplicaManager;

/// A replica as `describe_replica` reports it.
#[derive(Debug, Clone)]
pub struct ReplicaDescription {
    pub offsets: Offsets,
    pub leader_epoch: i32,
    pub is_leader: bool,
    pub checksum: String,
    pub checked_up_to: u64,
}

impl ReplicaManager {
    /// This broker's replica: offsets, leader epoch, leadership, and a CRC32C over the
    /// batches in `[from, to)` (whole batches; replicas hold identical bytes).
    pub fn describe_replica(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        to: u64,
    ) -> Result<ReplicaDescription, BrokerError> {
        let p = self
            .partition(topic, partition)
            .ok_or_else(|| self.missing(topic, partition))?;
        let offsets = p.offsets();
        let mut crc = 0u32;
        let mut checked_up_to = from;
        if to > from {
            let mut next = from.max(offsets.log_start);
            while next < to.min(offsets.log_end) {
                let batches = p.log().read(next, to, 1 << 20)?;
                if batches.is_empty() {
                    break;
                }
                for b in &batches {
                    crc = crc32c::crc32c_append(crc, b);
                    next = rill_common::record::BatchHeader::parse(b)?.next_offset();
                }
            }
            checked_up_to = next;
        }
        let leader_epoch = p.role().leader_epoch;
        Ok(ReplicaDescription {
            offsets,
            leader_epoch,
            is_leader: p.is_leader(),
            checksum: format!("{crc:08x}"),
            checked_up_to,
        })
    }

    /// `timestamp`: -2 earliest (and -4, Kafka's earliest local), -1 latest (where a
    /// consumer with `isolation` reads up to: the LSO for read_committed, the high
    /// watermark for read_uncommitted), -3 the record with the largest timestamp, else
    /// the first offset with a timestamp at least that. Also returns the partition's
    /// offsets.
    pub fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
        isolation: IsolationLevel,
    ) -> Result<(Option<(u64, i64)>, Offsets), BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let offsets = p.offsets();
        let found = match timestamp {
            -2 | -4 => Some((offsets.log_start, -1)),
            -1 => Some((consumer_bound(isolation, &offsets), -1)),
            -3 => p.offset_of_max_timestamp()?,
            t if t >= 0 => p.offset_for_timestamp(t)?,
            other => return Err(BrokerError::InvalidRequest(format!("timestamp {other}"))),
        };
        Ok((found, offsets))
    }

    /// DeleteRecords: the leader moves its log start to `offset` (-1: the high watermark),
    /// which must not pass the high watermark; followers follow through their fetches.
    /// Returns the new log start.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
    ) -> Result<u64, BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let offsets = p.offsets();
        let target = match offset {
            -1 => offsets.high_watermark,
            o => u64::try_from(o)
                .ok()
                .filter(|o| *o <= offsets.high_watermark)
                .ok_or(BrokerError::OffsetOutOfRange {
                    offset: o.max(0) as u64,
                    log_start: offsets.log_start,
                    log_end: offsets.high_watermark,
                })?,
        };
        p.log().delete_before(target)?;
        info!(
            topic,
            partition,
            log_start = p.log().log_start_offset(),
            "records deleted"
        );
        Ok(p.log().log_start_offset())
    }
}
