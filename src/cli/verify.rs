//! `rill verify`: produce unique values at a fixed rate, read everything back, and judge
//! what the cluster did with them (DESIGN.md section 3).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use rill_client::{
    Bootstrap, ClientError, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TransactionalConfig, TransactionalProducer,
};
use rill_common::ErrorCode;
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
    /// Batches per partition in flight at once (Kafka's
    /// max.in.flight.requests.per.connection), 1 to 5; with --idempotent only, others
    /// keep one.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// How long reading everything back may take.
    #[arg(long, default_value_t = 60)]
    read_timeout_s: u64,
    /// Produce in transactions with this transactional id; read back read_committed.
    #[arg(long)]
    transactional_id: Option<String>,
    /// With --transactional-id: abort this fraction of the transactions (0 to 1); none
    /// of their records may be read (`aborted_read`).
    #[arg(long, default_value_t = 0.0, requires = "transactional_id")]
    abort_ratio: f64,
    /// With --transactional-id: records per transaction.
    #[arg(long, default_value_t = 100, requires = "transactional_id")]
    transaction_size: u64,
}

enum Outcome {
    Acked(u32, u64),
    Failed,
    Unknown,
    /// Its transaction was aborted (on purpose, or after a definite error): a
    /// read_committed consumer must never see it.
    Aborted,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if args.idempotent && args.acks.wire() != -1 {
        bail!("INVALID_REQUEST: --idempotent needs --acks all");
    }
    if args.rate <= 0.0 {
        bail!("INVALID_REQUEST: --rate must be positive");
    }
    if !(0.0..=1.0).contains(&args.abort_ratio) || args.transaction_size == 0 {
        bail!("INVALID_REQUEST: --abort-ratio must be within 0..=1, --transaction-size >= 1");
    }
    let run_id = format!("{:x}", rand::random::<u32>());
    // One node list for producing and reading back: what the producer learns of the
    // cluster still serves when a bootstrap node is gone.
    let bootstrap = args.client.connect()?;
    let config = ProducerConfig {
        acks: args.acks.wire(),
        enable_idempotence: args.idempotent,
        max_in_flight: args.max_in_flight,
        linger: Duration::from_millis(2),
        delivery_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let outcomes = match &args.transactional_id {
        None => produce(&args, &run_id, Producer::new(bootstrap.clone(), config)).await,
        Some(id) => {
            let producer = TransactionalProducer::new(
                bootstrap.clone(),
                config,
                TransactionalConfig::new(id),
            )?;
            produce_transactions(&args, &run_id, producer).await?
        }
    };
    eprintln!("verify: produced; reading back");

    let read = read_back(
        &args,
        bootstrap,
        &acked_ends(&outcomes),
        Duration::from_secs(args.read_timeout_s),
    )
    .await?;
    let verdict = judge(&outcomes, &read);
    println!("{}", serde_json::to_string(&verdict)?);
    if verdict["ok"] != json!(true) {
        bail!("UNKNOWN_SERVER_ERROR: verification failed");
    }
    Ok(())
}

/// The value of the record sent `seq`-th, at its scheduled time.
async fn next_value(args: &VerifyArgs, run_id: &str, start: Instant, seq: u64) -> String {
    let every = Duration::from_secs_f64(1.0 / args.rate);
    tokio::time::sleep_until(start + every * seq as u32).await;
    if seq.is_multiple_of(1000) {
        eprintln!("verify: sent {seq}/{}", total(args));
    }
    format!("{run_id}-{seq}")
}

fn total(args: &VerifyArgs) -> u64 {
    (args.rate * args.duration_s as f64) as u64
}

fn record(args: &VerifyArgs, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: args.topic.clone(),
        value: Some(Bytes::from(value.to_string())),
        ..Default::default()
    }
}

/// Transactions of `--transaction-size` records, a random `--abort-ratio` of them
/// aborted. A committed transaction's records are acked; an aborted one's must never be
/// read; one whose end is unknown (the producer gave up) may be either.
async fn produce_transactions(
    args: &VerifyArgs,
    run_id: &str,
    mut producer: TransactionalProducer,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    producer.init_transactions().await?;
    let total = total(args);
    let start = Instant::now();
    let mut outcomes = Vec::with_capacity(total as usize);
    let mut seq = 0;
    while seq < total {
        producer.begin()?;
        let mut sent = Vec::new();
        let mut failed = None;
        while seq < total && (sent.len() as u64) < args.transaction_size {
            let value = next_value(args, run_id, start, seq).await;
            seq += 1;
            match producer.send(record(args, &value)).await {
                Ok(delivery) => sent.push((value, Some(delivery))),
                Err(e) => {
                    sent.push((value, None));
                    failed.get_or_insert(e);
                }
            }
        }
        let abort = failed.is_some() || rand::random::<f64>() < args.abort_ratio;
        let ended = if abort {
            producer.abort().await.map(|()| false)
        } else {
            match producer.commit().await {
                Ok(()) => Ok(true),
                // Definitely not committed: abort it.
                Err(e) if !e.is_retriable() && e.code() != ErrorCode::ProducerFenced => {
                    eprintln!("verify: commit failed ({e}); aborting");
                    producer.abort().await.map(|()| false)
                }
                Err(e) => Err(e),
            }
        };
        for (value, delivery) in sent {
            let outcome = match (&ended, delivery) {
                (Ok(true), Some(d)) => match d.await {
                    Ok(meta) => Outcome::Acked(meta.partition, meta.offset),
                    Err(_) => Outcome::Unknown,
                },
                (Ok(true), None) => Outcome::Failed,
                (Ok(false), _) => Outcome::Aborted,
                (Err(_), _) => Outcome::Unknown,
            };
            outcomes.push((value, outcome));
        }
        if let Err(e) = ended {
            // Fenced, or the coordinator could not be reached for max.block.ms: the
            // rest is not sent.
            eprintln!("verify: the transaction's end is unknown ({e}); stopping");
            break;
        }
    }
    producer.close().await;
    Ok(outcomes)
}

/// Records one by one at the rate, each acked, failed or unknown.
async fn produce(args: &VerifyArgs, run_id: &str, producer: Producer) -> Vec<(String, Outcome)> {
    let total = total(args);
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(total as usize);
    for seq in 0..total {
        let value = next_value(args, run_id, start, seq).await;
        let delivery = producer.send(record(args, &value)).await;
        pending.push(async move { (value, delivery.await) });
        while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
            outcomes.push(classify(done));
        }
    }
    while let Some(done) = pending.next().await {
        outcomes.push(classify(done));
    }
    producer.close().await;
    outcomes
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

/// Per partition, the offset just past its last acked record.
fn acked_ends(outcomes: &[(String, Outcome)]) -> HashMap<u32, u64> {
    let mut ends = HashMap::new();
    for (_, outcome) in outcomes {
        if let Outcome::Acked(partition, offset) = outcome {
            let end = ends.entry(*partition).or_insert(0);
            *end = (*end).max(offset + 1);
        }
    }
    ends
}

/// Every record of the topic, from each partition's start to its high watermark or past
/// its last acked record, whichever is further: right after a restart a leader's high
/// watermark can lag what it acknowledged before, until its followers fetch again.
/// Errors a client retries (a leader away, a cluster restarting) are waited out until
/// `timeout`.
async fn read_back(
    args: &VerifyArgs,
    bootstrap: Bootstrap,
    acked_ends: &HashMap<u32, u64>,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<(u32, u64), String>> {
    let deadline = Instant::now() + timeout;
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
        let listed = loop {
            match consumer.list_offset(tp, OffsetReset::Latest).await {
                Ok(end) => break end,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let acked = acked_ends.get(&tp.1).copied().unwrap_or(0);
        ends.insert(tp.clone(), listed.max(acked));
    }
    consumer.assign(partitions.clone());
    let mut read = BTreeMap::new();
    while partitions
        .iter()
        .any(|tp| consumer.position(tp).unwrap_or(0) < ends[tp])
    {
        if Instant::now() > deadline {
            bail!("REQUEST_TIMED_OUT: could not read the topic back within {timeout:?}");
        }
        let records = match consumer.poll().await {
            Ok(records) => records,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for r in records {
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
    let mut aborted_read = Vec::new();
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
            Outcome::Aborted => {
                failed += 1;
                if where_read.contains_key(value.as_str()) {
                    aborted_read.push(json!(value));
                }
            }
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
        && failed_visible.is_empty()
        && aborted_read.is_empty();
    json!({
        "acked": acked, "failed": failed, "unknown": unknown, "consumed": consumed,
        "lost": lost, "duplicates": duplicates, "inconsistent_offsets": inconsistent,
        "nonmonotonic": nonmonotonic, "failed_visible": failed_visible,
        "aborted_read": aborted_read, "ok": ok,
    })
}

fn seq_of(value: &str) -> u64 {
    value
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
