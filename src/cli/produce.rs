//! `rill produce`: one record per stdin line; with `--json` one ack line per record, in
//! input order.

use std::collections::VecDeque;
use std::io::Write;

use anyhow::bail;
use bytes::Bytes;
use rill_client::{
    ClientError, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, TransactionalConfig,
    TransactionalProducer,
};
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
    /// Batches per partition in flight at once (Kafka's
    /// max.in.flight.requests.per.connection), 1 to 5; with --idempotent only, others
    /// keep one.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// Compress batches: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// A transactional producer with this id: all of stdin is one transaction,
    /// committed at its end (aborted if any record fails). Fences an earlier producer
    /// with the same id. Needs --acks all.
    #[arg(long)]
    transactional_id: Option<String>,
}

/// The plain or the transactional producer behind `rill produce`.
enum AnyProducer {
    Plain(Producer),
    Transactional(TransactionalProducer),
}

impl AnyProducer {
    async fn send(&mut self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        match self {
            Self::Plain(p) => Ok(p.send(record).await),
            Self::Transactional(p) => p.send(record).await,
        }
    }
}

/// Deliveries awaited at most at once; reading stdin waits beyond that.
const MAX_PENDING: usize = 20_000;

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if (args.idempotent || args.transactional_id.is_some()) && args.acks.wire() != -1 {
        bail!("INVALID_REQUEST: --idempotent and --transactional-id need --acks all");
    }
    let bootstrap = args.client.connect()?;
    let config = ProducerConfig {
        acks: args.acks.wire(),
        enable_idempotence: args.idempotent,
        max_in_flight: args.max_in_flight,
        linger: std::time::Duration::from_millis(args.linger_ms),
        batch_size: args.batch_size,
        compression: args.compression,
        ..Default::default()
    };
    let mut producer = match &args.transactional_id {
        None => AnyProducer::Plain(Producer::new(bootstrap, config)),
        Some(id) => {
            let mut p =
                TransactionalProducer::new(bootstrap, config, TransactionalConfig::new(id))?;
            p.init_transactions().await?;
            p.begin()?;
            AnyProducer::Transactional(p)
        }
    };
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
        pending.push_back((value, producer.send(record).await?));
        if pending.len() >= MAX_PENDING {
            if let Some((value, delivery)) = pending.pop_front() {
                settle(value, delivery.await, &mut out)?;
            }
        }
    }
    match producer {
        AnyProducer::Plain(producer) => {
            producer.flush().await;
            while let Some((value, delivery)) = pending.pop_front() {
                settle(value, delivery.await, &mut out)?;
            }
            producer.close().await;
        }
        AnyProducer::Transactional(mut producer) => {
            // Acks are printed only once the transaction committed: before, the records
            // are not visible to read_committed consumers.
            let mut written = Vec::new();
            let mut failure = None;
            while let Some((value, delivery)) = pending.pop_front() {
                match delivery.await {
                    Ok(meta) => written.push((value, meta)),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            let outcome = match failure {
                Some(e) => Err(e),
                None => producer.commit().await,
            };
            if let Err(e) = outcome {
                let aborted = producer.abort().await;
                producer.close().await;
                let status = if aborted.is_ok() {
                    "aborted"
                } else {
                    "left to its timeout"
                };
                bail!("{}: the transaction is {status}: {e}", e.code());
            }
            producer.close().await;
            for (value, meta) in written {
                settle(value, Ok(meta), &mut out)?;
            }
        }
    }
    out.flush()?;
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
