//! `bench e2e`: produce at a fixed rate and consume the same records in the same process;
//! the latency of a record runs from its intended send time to the poll that returned it
//! (so it includes the wait for the high watermark: replication to the ISR).

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use rill_client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use tokio::time::Instant;

use super::{histogram, progress, Summary, Timeline};
use crate::cli::produce::AcksArg;
use crate::cli::ClientArgs;

#[derive(clap::Args)]
pub struct E2eBench {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    topic: String,
    /// Records per second.
    #[arg(long)]
    rate: f64,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    #[arg(long, default_value_t = 30)]
    duration_s: u64,
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

/// How long the consumer may wait for the last records after the producer finished.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn run(args: E2eBench) -> anyhow::Result<Summary> {
    // Each record starts with its intended send time (µs since `start`), then padding.
    if args.rate.is_nan() || args.rate <= 0.0 || args.record_size < 8 || args.duration_s == 0 {
        bail!(
            "INVALID_REQUEST: --rate and --duration-s must be positive, --record-size at least 8"
        );
    }
    let total = (args.rate * args.duration_s as f64).round() as u64;
    let bootstrap = args.client.connect()?;
    let mut consumer = Consumer::new(
        bootstrap.clone(),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            ..Default::default()
        },
    );
    let partitions = consumer.partitions_of(&args.topic).await?;
    for tp in &partitions {
        let end = consumer.list_offset(tp, OffsetReset::Latest).await?;
        consumer.seek(tp, end);
    }
    consumer.assign(partitions);
    let producer = Producer::new(
        bootstrap,
        ProducerConfig {
            acks: args.acks.wire(),
            linger: Duration::from_millis(args.linger_ms),
            ..Default::default()
        },
    );

    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / args.rate);
    let (topic, record_size) = (args.topic.clone(), args.record_size);
    let produce = tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut failed = 0u64;
        for i in 0..total {
            let intended = start + every.mul_f64(i as f64);
            tokio::time::sleep_until(intended).await;
            let mut value = BytesMut::with_capacity(record_size);
            value.put_u64((intended - start).as_micros() as u64);
            value.resize(record_size, b'e');
            let record = ProducerRecord {
                topic: topic.clone(),
                value: Some(value.freeze()),
                ..Default::default()
            };
            pending.push(producer.send(record).await);
            while let Some(Some(result)) = futures::FutureExt::now_or_never(pending.next()) {
                failed += u64::from(result.is_err());
            }
        }
        while let Some(result) = pending.next().await {
            failed += u64::from(result.is_err());
        }
        producer.close().await;
        failed
    });

    let bar = progress(total, "e2e");
    let mut latency = histogram()?;
    let mut timeline = Timeline::default();
    let (mut received, mut bytes) = (0u64, 0u64);
    let give_up = start + Duration::from_secs(args.duration_s) + DRAIN;
    while received < total && Instant::now() < give_up {
        let records = consumer.poll().await?;
        let now_us = start.elapsed().as_micros() as u64;
        for r in &records {
            let sent_us = r
                .value
                .as_ref()
                .and_then(|v| v.get(..8))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .context("a record without the bench's send time: is another producer writing to the topic?")?;
            latency.saturating_record(now_us.saturating_sub(sent_us).max(1));
            bytes += r.value.as_ref().map_or(0, Bytes::len) as u64;
        }
        received += records.len() as u64;
        timeline.record(start.elapsed(), records.len() as u64);
        bar.set_position(received);
    }
    bar.finish_and_clear();
    let failed = produce.await?;
    if failed > 0 || received < total {
        bail!(
            "UNKNOWN_SERVER_ERROR: {failed} of {total} records failed to produce, {received} consumed"
        );
    }
    let mut extra = serde_json::Map::new();
    extra.insert("acks".into(), serde_json::json!(args.acks.wire()));
    extra.insert("record_size".into(), serde_json::json!(args.record_size));
    extra.insert("rate".into(), serde_json::json!(args.rate));
    Ok(Summary {
        workload: "e2e".into(),
        records: received,
        bytes,
        elapsed: start.elapsed(),
        latency_us: latency,
        timeline,
        extra,
    })
}
