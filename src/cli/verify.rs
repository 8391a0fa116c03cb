//! `rill verify`: produce unique values at a fixed rate, read everything back, and judge
//! what the cluster did with them (DESIGN.md section 3).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use rill_client::{
    Bootstrap, ClientError, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
    ProducerRecord,
};
use serde_json::json;
use tokio::time::Instant;

use super::produce::AcksArg;
use super::ClientArgs;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Records per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// The idempotent producer: a retried batch is stored once (needs --acks all).
    #[arg(long)]
    idempotent: bool,
    /// How long reading everything back may take.
    #[arg(long, default_value_t = 60)]
    read_timeout_s: u64,
}

enum Outcome {
    Acked(u32, u64),
    Failed,
    Unknown,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if args.idempotent && args.acks.wire() != -1 {
        bail!("INVALID_REQUEST: --idempotent needs --acks all");
    }
    if args.rate <= 0.0 {
        bail!("INVALID_REQUEST: --rate must be positive");
    }
    let run_id = format!("{:x}", rand::random::<u32>());
    // One node list for producing and reading back: what the producer learns of the
    // cluster still serves when a bootstrap node is gone.
    let bootstrap = Bootstrap::new(&args.client.bootstrap)?;
    let producer = Producer::new(
        bootstrap.clone(),
        ProducerConfig {
            acks: args.acks.wire(),
            enable_idempotence: args.idempotent,
            linger: Duration::from_millis(2),
            delivery_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        },
    );
    let total = (args.rate * args.duration_s as f64) as u64;
    let every = Duration::from_secs_f64(1.0 / args.rate);
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(total as usize);
    for seq in 0..total {
        tokio::time::sleep_until(start + every * seq as u32).await;
        let value = format!("{run_id}-{seq}");
        let record = ProducerRecord {
            topic: args.topic.clone(),
            value: Some(Bytes::from(value.clone())),
            ..Default::default()
        };
        let delivery = producer.send(record).await;
        pending.push(async move { (value, delivery.await) });
        while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
            outcomes.push(classify(done));
        }
        if seq % 1000 == 0 {
            eprintln!("verify: sent {seq}/{total}");
        }
    }
    while let Some(done) = pending.next().await {
        outcomes.push(classify(done));
    }
    producer.close().await;
    eprintln!("verify: produced; reading back");

    let read = read_back(&args, bootstrap, Duration::from_secs(args.read_timeout_s)).await?;
    let verdict = judge(&outcomes, &read);
    println!("{}", serde_json::to_string(&verdict)?);
    if verdict["ok"] != json!(true) {
        bail!("UNKNOWN_SERVER_ERROR: verification failed");
    }
    Ok(())
}

fn classify(
    (value, result): (String, Result<rill_client::RecordMetadata, ClientError>),
) -> (String, Outcome) {
    let outcome = match result {
        Ok(meta) => Outcome::Acked(meta.partition, meta.offset),
        // A definite refusal: the write did not happen.
        Err(e) if !e.is_retriable() => Outcome::Failed,
        // Timed out or lost touch: it may or may not have been written.
        Err(_) => Outcome::Unknown,
    };
    (value, outcome)
}

/// Every record of the topic, from each partition's start to its high watermark.
async fn read_back(
    args: &VerifyArgs,
    bootstrap: Bootstrap,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<(u32, u64), String>> {
    let mut consumer = Consumer::new(
        bootstrap,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            max_wait: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let partitions = consumer.partitions_of(&args.topic).await?;
    let mut ends = HashMap::new();
    for tp in &partitions {
        ends.insert(
            tp.clone(),
            consumer.list_offset(tp, OffsetReset::Latest).await?,
        );
    }
    consumer.assign(partitions.clone());
    for tp in &partitions {
        consumer.seek_to(tp, OffsetReset::Earliest).await?;
    }
    let deadline = Instant::now() + timeout;
    let mut read = BTreeMap::new();
    while partitions
        .iter()
        .any(|tp| consumer.position(tp).unwrap_or(0) < ends[tp])
    {
        if Instant::now() > deadline {
            bail!("REQUEST_TIMED_OUT: could not read the topic back within {timeout:?}");
        }
        for r in consumer.poll().await? {
            let value = r
                .value
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            read.insert((r.partition, r.offset), value);
        }
    }
    Ok(read)
}

fn judge(outcomes: &[(String, Outcome)], read: &BTreeMap<(u32, u64), String>) -> serde_json::Value {
    let mut where_read: HashMap<&str, Vec<(u32, u64)>> = HashMap::new();
    for (at, value) in read {
        where_read.entry(value.as_str()).or_default().push(*at);
    }
    let (mut acked, mut failed, mut unknown) = (0, 0, 0);
    let (mut lost, mut inconsistent, mut failed_visible) = (Vec::new(), Vec::new(), Vec::new());
    let mut acks_by_partition: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    for (value, outcome) in outcomes {
        match outcome {
            Outcome::Acked(p, o) => {
                acked += 1;
                match read.get(&(*p, *o)) {
                    Some(v) if v == value => {}
                    Some(other) => inconsistent
                        .push(json!({"partition": p, "offset": o, "acked": value, "read": other})),
                    None => lost.push(json!({"partition": p, "offset": o, "value": value})),
                }
                acks_by_partition
                    .entry(*p)
                    .or_default()
                    .push((seq_of(value), *o));
            }
            Outcome::Failed => {
                failed += 1;
                if where_read.contains_key(value.as_str()) {
                    failed_visible.push(json!(value));
                }
            }
            Outcome::Unknown => unknown += 1,
        }
    }
    // In send order, a partition's acknowledged offsets must grow.
    let mut nonmonotonic = Vec::new();
    for (p, mut acks) in acks_by_partition {
        acks.sort_unstable();
        for pair in acks.windows(2) {
            if pair[1].1 < pair[0].1 {
                nonmonotonic.push(json!({"partition": p, "offset": pair[1].1, "after": pair[0].1}));
            }
        }
    }
    let ours: HashSet<&str> = outcomes.iter().map(|(v, _)| v.as_str()).collect();
    let duplicates: Vec<serde_json::Value> = where_read
        .iter()
        .filter(|(v, at)| at.len() > 1 && ours.contains(*v))
        .map(|(v, at)| json!({"value": v, "at": at}))
        .collect();
    let consumed = read.values().filter(|v| ours.contains(v.as_str())).count();
    let ok = lost.is_empty()
        && inconsistent.is_empty()
        && nonmonotonic.is_empty()
        && failed_visible.is_empty();
    json!({
        "acked": acked, "failed": failed, "unknown": unknown, "consumed": consumed,
        "lost": lost, "duplicates": duplicates, "inconsistent_offsets": inconsistent,
        "nonmonotonic": nonmonotonic, "failed_visible": failed_visible, "ok": ok,
    })
}

fn seq_of(value: &str) -> u64 {
    value
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
