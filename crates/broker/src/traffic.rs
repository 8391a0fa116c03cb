//! Records and bytes in and out per topic, whichever protocol carried them (Prometheus
//! counters through the `metrics` facade; the node installs the exporter).

use bytes::Bytes;
use rill_common::record::BatchHeader;

/// A producer's batch was appended (acknowledged or not).
pub fn produced(topic: &str, records: u64, bytes: usize) {
    metrics::counter!("rill_topic_records_in_total", "topic" => topic.to_string())
        .increment(records);
    metrics::counter!("rill_topic_bytes_in_total", "topic" => topic.to_string())
        .increment(bytes as u64);
}

/// A consumer fetch returned these batches.
pub fn consumed(topic: &str, batches: &[Bytes]) {
    if batches.is_empty() {
        return;
    }
    let records: u64 = batches
        .iter()
        .filter_map(|b| BatchHeader::parse(b).ok())
        .map(|h| h.record_count.max(0) as u64)
        .sum();
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    metrics::counter!("rill_topic_records_out_total", "topic" => topic.to_string())
        .increment(records);
    metrics::counter!("rill_topic_bytes_out_total", "topic" => topic.to_string())
        .increment(bytes as u64);
}
