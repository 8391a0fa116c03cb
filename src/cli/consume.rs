//! `rill consume`: print records as they arrive (value per line, or one JSON object per
//! line with `--json`).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use rill_client::{Bootstrap, Consumer, ConsumerConfig, OffsetReset};
use rill_common::ErrorCode;
use serde_json::json;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    /// Consume as a member of this group (not available yet).
    #[arg(long)]
    group: Option<String>,
    /// Start at the earliest offset instead of the end.
    #[arg(long)]
    from_beginning: bool,
    /// Exit after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<u32>,
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.group.is_some() {
        bail!(
            "{}: consumer groups are not available yet",
            ErrorCode::InvalidRequest
        );
    }
    let mut consumer = Consumer::new(
        Bootstrap::new(&args.client.bootstrap)?,
        ConsumerConfig {
            auto_offset_reset: if args.from_beginning {
                OffsetReset::Earliest
            } else {
                OffsetReset::Latest
            },
            ..Default::default()
        },
    );
    let mut partitions = consumer.partitions_of(&args.topic).await?;
    if let Some(p) = args.partition {
        partitions.retain(|tp| tp.1 == p);
        if partitions.is_empty() {
            bail!(
                "{}: topic '{}' has no partition {p}",
                ErrorCode::UnknownTopicOrPartition,
                args.topic
            );
        }
    }
    consumer.assign(partitions);
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut count = 0u64;
    let stdout = std::io::stdout();
    loop {
        let records = consumer.poll().await?;
        let mut out = stdout.lock();
        for r in &records {
            if args.max_messages.is_some_and(|max| count >= max) {
                break;
            }
            count += 1;
            if args.client.json {
                let line = json!({
                    "partition": r.partition, "offset": r.offset, "key": text(&r.key),
                    "value": text(&r.value), "timestamp_ms": r.timestamp_ms,
                });
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{}", text(&r.value).unwrap_or_default())?;
            }
        }
        out.flush()?;
        if !records.is_empty() {
            last_record = Instant::now();
        }
        if args.max_messages.is_some_and(|max| count >= max) {
            return Ok(());
        }
        if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
            return Ok(());
        }
    }
}
