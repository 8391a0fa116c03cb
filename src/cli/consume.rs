//! `rill consume`: print records as they arrive (value per line, or one JSON object per
//! line with `--json`).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use rill_client::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetReset,
};
use rill_common::transaction::IsolationLevel;
use rill_common::ErrorCode;
use serde_json::json;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    /// Consume as a member of this group: partitions are shared with its other members,
    /// and the offset after each printed record is committed.
    #[arg(long)]
    group: Option<String>,
    /// With --group: a static member id (group.instance.id).
    #[arg(long, requires = "group")]
    instance_id: Option<String>,
    /// With --group: the assignor (range, roundrobin, sticky, cooperative-sticky).
    #[arg(long, default_value = "cooperative-sticky", requires = "group")]
    assignor: String,
    /// With --group: the session timeout.
    #[arg(long, default_value_t = 10_000, requires = "group")]
    session_timeout_ms: u64,
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
    /// read_committed (default): committed records only, up to the last stable offset.
    /// read_uncommitted: up to the high watermark, open and aborted transactions included.
    /// read_latest: from the leader up to its log end, for the lowest latency; records
    /// read this way may later be truncated away (they are not on a quorum yet).
    #[arg(long, default_value = "read_committed", value_parser = parse_isolation)]
    isolation_level: IsolationLevel,
}

fn parse_isolation(name: &str) -> Result<IsolationLevel, String> {
    IsolationLevel::parse(name).ok_or_else(|| {
        format!("{name:?}: expected read_committed, read_uncommitted or read_latest")
    })
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn fetch_config(args: &ConsumeArgs) -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        isolation: args.isolation_level,
        ..Default::default()
    }
}

/// Prints records until `max_messages`; returns how many were printed.
fn print_records(
    args: &ConsumeArgs,
    records: &[ConsumerRecord],
    count: &mut u64,
) -> anyhow::Result<usize> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0;
    for r in records {
        if args.max_messages.is_some_and(|max| *count >= max) {
            break;
        }
        *count += 1;
        printed += 1;
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
    Ok(printed)
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if let Some(group) = args.group.clone() {
        return run_group(args, group).await;
    }
    let mut consumer = Consumer::new(args.client.connect()?, fetch_config(&args));
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
    loop {
        let records = consumer.poll().await?;
        print_records(&args, &records, &mut count)?;
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

/// `--group`: a group member that commits the offset after each record it printed, so
/// a record is printed by some member at least once across rebalances and crashes.
async fn run_group(args: ConsumeArgs, group_id: String) -> anyhow::Result<()> {
    if args.partition.is_some() {
        bail!(
            "{}: --partition and --group exclude each other (the group assigns partitions)",
            ErrorCode::InvalidRequest
        );
    }
    let mut consumer = GroupConsumer::new(
        args.client.connect()?,
        GroupConsumerConfig {
            group_id,
            group_instance_id: args.instance_id.clone(),
            client_id: "rill-consume".into(),
            session_timeout: Duration::from_millis(args.session_timeout_ms),
            heartbeat_interval: Duration::from_millis((args.session_timeout_ms / 5).max(100)),
            assignors: vec![args.assignor.clone()],
            auto_commit_interval: None,
            fetch: fetch_config(&args),
            ..Default::default()
        },
    )?;
    consumer.subscribe(&[&args.topic], None);
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut count = 0u64;
    // Offsets after printed records that are not committed yet. A failed commit (the
    // group moved to a new generation) is retried on the next round, for the partitions
    // this member still owns; it never overwrites a new owner's commit.
    let mut pending: std::collections::BTreeMap<(String, u32), u64> = Default::default();
    loop {
        let records = consumer.poll().await?;
        let printed = print_records(&args, &records, &mut count)?;
        for r in &records[..printed] {
            pending.insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        let owned: std::collections::BTreeSet<(String, u32)> =
            consumer.assignment().into_iter().collect();
        pending.retain(|tp, _| owned.contains(tp));
        let offsets: Vec<((String, u32), u64)> =
            pending.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
        match consumer.commit_offsets(&offsets).await {
            Ok(()) => pending.clear(),
            // A new generation, or this member was expired (the coordinator restarted
            // while it could not be reached): the next poll rejoins.
            Err(e)
                if e.is_retriable()
                    || matches!(
                        e.code(),
                        ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId
                    ) =>
            {
                tracing::info!("commit deferred to the next round: {e}");
            }
            Err(e) => return Err(e.into()),
        }
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let done = args.max_messages.is_some_and(|max| count >= max)
            || idle_limit.is_some_and(|limit| last_record.elapsed() >= limit);
        if done {
            if !pending.is_empty() {
                let offsets: Vec<((String, u32), u64)> = pending.into_iter().collect();
                if let Err(e) = consumer.commit_offsets(&offsets).await {
                    tracing::warn!("last commit failed, records may be delivered again: {e}");
                }
            }
            consumer.close().await?;
            return Ok(());
        }
    }
}
