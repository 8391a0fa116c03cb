//! `rill produce`: one record per stdin line; with `--json` one ack line per record, in
//! input order.

use std::collections::VecDeque;
use std::io::Write;

use anyhow::bail;
use bytes::Bytes;
use rill_client::{Bootstrap, Producer, ProducerConfig, ProducerRecord};
use rill_common::record::Compression;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use super::ClientArgs;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AcksArg {
    All,
    #[value(name = "1")]
    One,
    #[value(name = "0")]
    Zero,
}

impl AcksArg {
    pub fn wire(self) -> i32 {
        match self {
            Self::All => -1,
            Self::One => 1,
            Self::Zero => 0,
        }
    }
}

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Split each line at the first SEP into key and value (lines without it have no key).
    #[arg(long)]
    key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// The idempotent producer: a retried batch is stored once (needs --acks all).
    #[arg(long)]
    idempotent: bool,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// Compress batches: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
}

/// Deliveries awaited at most at once; reading stdin waits beyond that.
const MAX_PENDING: usize = 20_000;

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if args.idempotent && args.acks.wire() != -1 {
        bail!("INVALID_REQUEST: --idempotent needs --acks all");
    }
    let producer = Producer::new(
        Bootstrap::new(&args.client.bootstrap)?,
        ProducerConfig {
            acks: args.acks.wire(),
            enable_idempotence: args.idempotent,
            linger: std::time::Duration::from_millis(args.linger_ms),
            batch_size: args.batch_size,
            compression: args.compression,
            ..Default::default()
        },
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut pending = VecDeque::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut acked, mut failed, mut first_error) = (0u64, 0u64, None);
    let mut settle = |value: String,
                      result: Result<rill_client::RecordMetadata, rill_client::ClientError>,
                      out: &mut dyn Write|
     -> anyhow::Result<()> {
        match result {
            Ok(meta) => {
                acked += 1;
                if args.client.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"partition": meta.partition, "offset": meta.offset, "value": value})
                    )?;
                }
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        Ok(())
    };
    while let Some(line) = lines.next_line().await? {
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line),
            },
            None => (None, line),
        };
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key: key.map(Bytes::from),
            value: Some(Bytes::from(value.clone())),
            timestamp_ms: None,
        };
        pending.push_back((value, producer.send(record).await));
        if pending.len() >= MAX_PENDING {
            if let Some((value, delivery)) = pending.pop_front() {
                settle(value, delivery.await, &mut out)?;
            }
        }
    }
    producer.flush().await;
    while let Some((value, delivery)) = pending.pop_front() {
        settle(value, delivery.await, &mut out)?;
    }
    out.flush()?;
    producer.close().await;
    if let Some(e) = first_error {
        bail!(
            "{}: {failed} of {} records failed; first: {}",
            e.code(),
            acked + failed,
            e
        );
    }
    if !args.client.json {
        eprintln!("{acked} records produced");
    }
    Ok(())
}
