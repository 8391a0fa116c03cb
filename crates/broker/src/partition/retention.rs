//! Retention: where `retention.ms` and `retention.bytes` may cut a log, and when a
//! partition needs looking at again, so an idle partition costs no reads between cuts.

use rill_common::record::BatchHeader;

use super::PartitionConfig;

/// What the last retention check of a partition found: until `due_ms`, with the same
/// log start, settings and a log within `retention.bytes`, a check would cut nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionCheck {
    pub log_start: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub due_ms: i64,
}

impl RetentionCheck {
    /// After a check of `headers` (the log from its start, read before the cut) that
    /// moved the log start to `log_start`: when the first batch left can expire. `None`
    /// when nothing is left to expire by time or the check must run again anyway (an
    /// empty log, or retention held back by the high watermark or an open transaction).
    pub fn after(
        headers: &[BatchHeader],
        log_start: u64,
        config: &PartitionConfig,
        now_ms: i64,
    ) -> Option<Self> {
        let first = headers.iter().find(|h| h.next_offset() > log_start)?;
        let due_ms = if config.retention_ms >= 0 {
            first.max_timestamp.saturating_add(config.retention_ms)
        } else {
            i64::MAX
        };
        (due_ms > now_ms).then_some(Self {
            log_start,
            retention_ms: config.retention_ms,
            retention_bytes: config.retention_bytes,
            due_ms,
        })
    }

    /// Whether a check now would certainly cut nothing.
    pub fn still_holds(
        &self,
        log_start: u64,
        log_size: u64,
        config: &PartitionConfig,
        now_ms: i64,
    ) -> bool {
        self.log_start == log_start
            && self.retention_ms == config.retention_ms
            && self.retention_bytes == config.retention_bytes
            && now_ms < self.due_ms
            && (config.retention_bytes < 0 || log_size <= config.retention_bytes as u64)
    }
}

/// Where retention may cut the log: batches older than `retention_ms` (by their newest
/// timestamp) or beyond `retention_bytes` from the end go, never at or past the high
/// watermark. Returns the new log start offset, if it moves.
pub fn retention_point(
    headers: &[BatchHeader],
    log_size: u64,
    now_ms: i64,
    config: &PartitionConfig,
    high_watermark: u64,
) -> Option<u64> {
    let mut point = None;
    let mut remaining = log_size;
    for h in headers {
        if h.next_offset() > high_watermark {
            break;
        }
        let expired = config.retention_ms >= 0
            && h.max_timestamp < now_ms.saturating_sub(config.retention_ms);
        let too_big = config.retention_bytes >= 0 && remaining > config.retention_bytes as u64;
        if !(expired || too_big) {
            break;
        }
        // The stored size is the batch plus its 4-byte envelope.
        remaining = remaining.saturating_sub(h.size as u64 + 4);
        point = Some(h.next_offset());
    }
    point
}

#[cfg(test)]
mod tests {
    use rill_common::record::{self, RecordBatchBuilder};

    use super::*;

    fn header(base: u64, count: i32, ts: i64) -> BatchHeader {
        let mut b = RecordBatchBuilder::new();
        for _ in 0..count {
            b.push(None, Some(b"0123456789"), ts);
        }
        let mut buf = b.build();
        record::set_base_offset(&mut buf, base);
        BatchHeader::parse(&buf).unwrap_or_else(|e| panic!("{e}"))
    }

    fn config(retention_ms: i64, retention_bytes: i64) -> PartitionConfig {
        PartitionConfig {
            max_message_bytes: 1 << 20,
            retention_ms,
            retention_bytes,
            min_insync_replicas: 1,
        }
    }

    #[test]
    fn time_retention_removes_old_batches_below_the_high_watermark() {
        let hs = [header(0, 2, 100), header(2, 2, 200), header(4, 2, 900)];
        let size: u64 = hs.iter().map(|h| h.size as u64 + 4).sum();
        assert_eq!(
            retention_point(&hs, size, 1000, &config(500, -1), 6),
            Some(4)
        );
        assert_eq!(
            retention_point(&hs, size, 1000, &config(500, -1), 3),
            Some(2),
            "HW bounds it"
        );
        assert_eq!(retention_point(&hs, size, 1000, &config(-1, -1), 6), None);
    }

    #[test]
    fn size_retention_keeps_the_newest_bytes() {
        let hs = [header(0, 2, 100), header(2, 2, 200), header(4, 2, 900)];
        let one = hs[0].size as u64 + 4;
        let size = one * 3;
        assert_eq!(
            retention_point(&hs, size, 0, &config(-1, (one * 2) as i64), 6),
            Some(2)
        );
        assert_eq!(retention_point(&hs, size, 0, &config(-1, 0), 6), Some(6));
        assert_eq!(
            retention_point(&hs, size, 0, &config(-1, (size) as i64), 6),
            None
        );
    }

    #[test]
    fn a_check_holds_until_the_first_batch_can_expire_or_anything_changes() {
        let hs = [header(0, 2, 100), header(2, 2, 200), header(4, 2, 900)];
        let size: u64 = hs.iter().map(|h| h.size as u64 + 4).sum();
        let by_time = config(500, -1);
        // Nothing cut at 550: batch 0 (newest record at 100) expires after 600.
        let check = RetentionCheck::after(&hs, 0, &by_time, 550);
        assert_eq!(check.map(|c| c.due_ms), Some(600));
        let check = check.unwrap_or_else(|| panic!("a check"));
        assert!(check.still_holds(0, size, &by_time, 599));
        assert!(!check.still_holds(0, size, &by_time, 600), "due");
        assert!(
            !check.still_holds(2, size, &by_time, 599),
            "the log start moved"
        );
        assert!(
            !check.still_holds(0, size, &config(100, -1), 599),
            "settings changed"
        );
        let by_size = config(500, size as i64);
        assert!(
            !check.still_holds(0, size + 1, &by_size, 599),
            "grew past retention.bytes"
        );
        // After a cut to 4, the first batch left (at 900) sets the time.
        let cut = RetentionCheck::after(&hs, 4, &by_time, 1_000);
        assert_eq!(cut.map(|c| c.due_ms), Some(1_400));
        // Already due (held back by the high watermark), an empty rest, no time limit.
        assert_eq!(RetentionCheck::after(&hs, 0, &by_time, 700), None);
        assert_eq!(RetentionCheck::after(&hs, 6, &by_time, 0), None);
        let by_size_only = config(-1, 1 << 30);
        let check = RetentionCheck::after(&hs, 0, &by_size_only, 0);
        assert_eq!(check.map(|c| c.due_ms), Some(i64::MAX));
    }
}
