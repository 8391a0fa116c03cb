use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use rill_client::{
    Producer, ProducerConfig, ProducerRecord, TransactionalConfig, TransactionalProducer,
};
use tokio::time::Instant;

use super::{histogram, progress, Summary, Timeline};
use crate::cli::produce::AcksArg;
use crate::cli::ClientArgs;

#[derive(clap::Args)]
pub struct ProduceBench {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Records per second over all producers; unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 1)]
    producers: u64,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 65536)]
    batch_size: usize,
    /// The idempotent producer (with --acks all).
    #[arg(long)]
    idempotent: bool,
    /// Batches per partition in flight at once (Kafka's
    /// max.in.flight.requests.per.connection), 1 to 5; with --idempotent only, others
    /// keep one.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// Transactions of this many records (a transactional producer per producer task;
    /// a record's latency runs to its transaction's commit).
    #[arg(long)]
    transaction_size: Option<u64>,
}

/// Records awaiting their ack per producer, at most.
const WINDOW: usize = 20_000;

pub async fn run(args: ProduceBench) -> anyhow::Result<Summary> {
    if args.producers == 0 || args.rate.is_some_and(|r| r <= 0.0) {
        bail!("INVALID_REQUEST: --producers and --rate must be positive");
    }
    let payload = Bytes::from(
        (0..args.record_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let bar = progress(args.records, "produce");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..args.producers {
        let count = args.records / args.producers + u64::from(k < args.records % args.producers);
        let config = ProducerConfig {
            acks: args.acks.wire(),
            enable_idempotence: args.idempotent,
            max_in_flight: args.max_in_flight,
            linger: Duration::from_millis(args.linger_ms),
            batch_size: args.batch_size,
            buffer_records: WINDOW,
            ..Default::default()
        };
        let (topic, payload, bar) = (args.topic.clone(), payload.clone(), bar.clone());
        let interval = args
            .rate
            .map(|r| Duration::from_secs_f64(args.producers as f64 / r));
        let offset = args
            .rate
            .map(|r| Duration::from_secs_f64(k as f64 / r))
            .unwrap_or_default();
        let bootstrap = args.client.connect()?;
        if let Some(size) = args.transaction_size {
            let id = format!("bench-{:x}-{k}", rand::random::<u32>());
            let producer =
                TransactionalProducer::new(bootstrap, config, TransactionalConfig::new(&id))?;
            let schedule = Schedule {
                start: start + offset,
                interval,
            };
            tasks.push(tokio::spawn(produce_in_transactions(
                producer, schedule, count, size, topic, payload, bar,
            )));
            continue;
        }
        let producer = Producer::new(bootstrap, config);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(start)?;
            let mut pending = FuturesUnordered::new();
            for i in 0..count {
                let intended = match interval {
                    Some(every) => {
                        let at = start + offset + every * i as u32;
                        tokio::time::sleep_until(at).await;
                        at
                    }
                    None => Instant::now(),
                };
                let record = ProducerRecord {
                    topic: topic.clone(),
                    value: Some(payload.clone()),
                    ..Default::default()
                };
                let delivery = producer.send(record).await;
                pending.push(async move { (delivery.await.is_ok(), intended.elapsed()) });
                // Settle whatever is done without waiting, and wait when the window is full.
                while pending.len() >= WINDOW {
                    if let Some((ok, took)) = pending.next().await {
                        tally.settle(ok, took, &bar);
                    }
                }
                while let Some(Some((ok, took))) = futures::FutureExt::now_or_never(pending.next())
                {
                    tally.settle(ok, took, &bar);
                }
            }
            while let Some((ok, took)) = pending.next().await {
                tally.settle(ok, took, &bar);
            }
            producer.close().await;
            anyhow::Ok(tally)
        }));
    }
    let mut latency = histogram()?;
    let mut timeline = Timeline::default();
    let (mut failed, mut max_ack_gap) = (0, Duration::ZERO);
    for task in tasks {
        let tally = task.await??;
        latency.add(tally.latency)?;
        timeline.merge(&tally.timeline);
        failed += tally.failed;
        max_ack_gap = max_ack_gap.max(tally.max_ack_gap);
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    if failed > 0 {
        bail!(
            "UNKNOWN_SERVER_ERROR: {failed} of {} records failed",
            args.records
        );
    }
    let mut extra = serde_json::Map::new();
    extra.insert("acks".into(), serde_json::json!(args.acks.wire()));
    extra.insert("record_size".into(), serde_json::json!(args.record_size));
    extra.insert("producers".into(), serde_json::json!(args.producers));
    extra.insert("rate".into(), serde_json::json!(args.rate));
    extra.insert("idempotent".into(), serde_json::json!(args.idempotent));
    extra.insert(
        "max_in_flight".into(),
        serde_json::json!(args.max_in_flight),
    );
    extra.insert(
        "transaction_size".into(),
        serde_json::json!(args.transaction_size),
    );
    // At a fixed rate, the longest silence between two acks of one producer: with a
    // leader killed mid-run, the failover gap as a client sees it.
    extra.insert(
        "max_ack_gap_ms".into(),
        serde_json::json!(max_ack_gap.as_secs_f64() * 1000.0),
    );
    Ok(Summary {
        workload: "produce".into(),
        records: args.records,
        bytes: args.records * args.record_size as u64,
        elapsed,
        latency_us: latency,
        timeline,
        extra,
    })
}

/// When a producer task's records are due.
struct Schedule {
    start: Instant,
    /// `None`: as fast as the producer takes them.
    interval: Option<Duration>,
}

/// One transactional producer's records, `size` per transaction; each record settles
/// when its transaction commits.
async fn produce_in_transactions(
    mut producer: TransactionalProducer,
    schedule: Schedule,
    count: u64,
    size: u64,
    topic: String,
    payload: Bytes,
    bar: indicatif::ProgressBar,
) -> anyhow::Result<Tally> {
    if size == 0 {
        bail!("INVALID_REQUEST: --transaction-size must be at least 1");
    }
    let mut tally = Tally::new(schedule.start)?;
    producer.init_transactions().await?;
    let mut sent = 0;
    while sent < count {
        producer.begin()?;
        let mut intended = Vec::new();
        while sent < count && (intended.len() as u64) < size {
            let at = match schedule.interval {
                Some(every) => {
                    let at = schedule.start + every * sent as u32;
                    tokio::time::sleep_until(at).await;
                    at
                }
                None => Instant::now(),
            };
            let record = ProducerRecord {
                topic: topic.clone(),
                value: Some(payload.clone()),
                ..Default::default()
            };
            // Checked by the commit: a failed record fails it.
            drop(producer.send(record).await?);
            intended.push(at);
            sent += 1;
        }
        let ok = producer.commit().await.is_ok();
        for at in intended {
            tally.settle(ok, at.elapsed(), &bar);
        }
        if !ok {
            producer.abort().await?;
        }
    }
    producer.close().await;
    Ok(tally)
}

/// One producer task's results.
struct Tally {
    start: Instant,
    latency: hdrhistogram::Histogram<u64>,
    timeline: Timeline,
    failed: u64,
    last_ack: Option<Instant>,
    max_ack_gap: Duration,
}

impl Tally {
    fn new(start: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            start,
            latency: histogram()?,
            timeline: Timeline::default(),
            failed: 0,
            last_ack: None,
            max_ack_gap: Duration::ZERO,
        })
    }

    fn settle(&mut self, ok: bool, took: Duration, bar: &indicatif::ProgressBar) {
        if ok {
            self.latency
                .saturating_record(took.as_micros().max(1) as u64);
            let now = Instant::now();
            self.timeline.record(now - self.start, 1);
            if let Some(last) = self.last_ack {
                self.max_ack_gap = self.max_ack_gap.max(now - last);
            }
            self.last_ack = Some(now);
        } else {
            self.failed += 1;
        }
        bar.inc(1);
    }
}
