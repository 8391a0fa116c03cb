//! `rill copy`: the exactly-once copier (consume-transform-produce). It reads `--from` as
//! a member of `--group` (read_committed) and writes each record to `--to`, in
//! transactions of up to `--transaction-size` records that commit the input offsets
//! with the output: a record is copied exactly once however often the copier, a broker
//! or the coordinator is killed. Input partition p goes to output partition
//! p mod (output partitions), so each input partition's order is kept. With
//! `--abort-ratio F` a random fraction F of the transactions is aborted on purpose (their
//! input is read again and copied by a later transaction): a test of the abort path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use rill_client::{
    ClientError, ConsumerConfig, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetReset,
    ProducerConfig, ProducerRecord, TopicPartition, TransactionalConfig, TransactionalProducer,
};
use rill_common::ErrorCode;
use serde::Serialize;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct CopyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The input topic.
    #[arg(long)]
    from: String,
    /// The output topic (it must exist).
    #[arg(long)]
    to: String,
    /// The consumer group whose committed offsets say how far the copy got.
    #[arg(long)]
    group: String,
    /// One copier at a time per id: a new one fences the old and aborts its transaction.
    #[arg(long)]
    transactional_id: String,
    /// Records per transaction (at most).
    #[arg(long, default_value_t = 500)]
    transaction_size: usize,
    /// Abort this fraction of the transactions on purpose (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    abort_ratio: f64,
    /// Exit when no input arrives for this long while partitions are assigned (default:
    /// run until killed).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// transaction.timeout.ms: the coordinator aborts a transaction open longer.
    #[arg(long, default_value_t = 60_000)]
    transaction_timeout_ms: u64,
}

#[derive(Debug, Default, Serialize)]
struct CopySummary {
    records_copied: u64,
    transactions_committed: u64,
    transactions_aborted: u64,
    /// Transactions that could not commit (an error) and were aborted.
    transactions_failed: u64,
}

/// A transaction's input: at most `size` records; partitions cut short are sought back
/// to their first record left out, so the positions are exactly after the batch.
fn cut(consumer: &mut GroupConsumer, batch: &mut Vec<ConsumerRecord>, size: usize) {
    if batch.len() <= size {
        return;
    }
    let mut first_left_out: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    for r in batch.drain(size..) {
        first_left_out
            .entry((r.topic.clone(), r.partition))
            .or_insert(r.offset);
    }
    for (tp, offset) in first_left_out {
        consumer.seek(&tp, offset);
    }
}

fn is_fenced(e: &ClientError) -> bool {
    e.code() == ErrorCode::ProducerFenced
}

pub async fn run(args: CopyArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.abort_ratio) {
        bail!("INVALID_REQUEST: --abort-ratio must be within 0..=1");
    }
    if args.transaction_size == 0 {
        bail!("INVALID_REQUEST: --transaction-size must be at least 1");
    }
    let bootstrap = args.client.connect()?;
    let admin = args.client.admin()?;
    let output_partitions = u32::try_from(admin.describe_topic(&args.to).await?.partitions.len())?;
    if output_partitions == 0 {
        bail!("UNKNOWN_TOPIC_OR_PARTITION: {} has no partitions", args.to);
    }
    let mut producer = TransactionalProducer::new(
        bootstrap.clone(),
        ProducerConfig::default(),
        TransactionalConfig {
            transaction_timeout: Duration::from_millis(args.transaction_timeout_ms),
            ..TransactionalConfig::new(&args.transactional_id)
        },
    )?;
    // Fences an earlier copier with this id and aborts its open transaction before this
    // one reads any committed offset.
    producer.init_transactions().await?;
    let mut consumer = GroupConsumer::new(
        bootstrap,
        GroupConsumerConfig {
            group_id: args.group.clone(),
            auto_commit_interval: None,
            fetch: ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    consumer.subscribe(&[args.from.as_str()], None);
    let mut summary = CopySummary::default();
    let mut last_input = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if consumer.assignment().is_empty() {
            // Joining, or waiting for partitions: not idle.
            last_input = Instant::now();
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_input.elapsed() >= Duration::from_millis(t))
        {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!("{}", serde_json::to_string(&summary)?);
            last_report = Instant::now();
        }
        // The input of one transaction, read within one generation.
        let generation = consumer.generation();
        let mut batch = Vec::new();
        while batch.len() < args.transaction_size {
            match consumer.poll().await {
                Ok(records) if records.is_empty() => break,
                Ok(records) => batch.extend(records),
                Err(e) if e.is_retriable() => {
                    tracing::debug!("poll: {e}");
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if batch.is_empty() {
            continue;
        }
        last_input = Instant::now();
        cut(&mut consumer, &mut batch, args.transaction_size);
        let owned = consumer.assignment();
        let rebalanced = consumer.generation() != generation
            || batch
                .iter()
                .any(|r| !owned.contains(&(r.topic.clone(), r.partition)));
        if rebalanced {
            // Partitions moved while reading: read again from the committed offsets.
            consumer.seek_to_committed().await?;
            continue;
        }
        let records = batch.len() as u64;
        match copy_in_transaction(&mut producer, &consumer, &args, output_partitions, batch).await {
            Ok(true) => {
                summary.transactions_committed += 1;
                summary.records_copied += records;
                continue;
            }
            Ok(false) => summary.transactions_aborted += 1,
            Err(e) if is_fenced(&e) => return Err(e.into()),
            Err(e) => {
                tracing::info!("the transaction failed, aborting it: {e}");
                summary.transactions_failed += 1;
                match producer.abort().await {
                    Ok(()) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Aborted: its input is read again from the committed offsets.
        consumer.seek_to_committed().await?;
    }
    producer.close().await;
    let _ = consumer.close().await;
    args.client.print(&summary, || {
        format!(
            "{} records copied in {} transactions ({} aborted on purpose, {} failed)",
            summary.records_copied,
            summary.transactions_committed,
            summary.transactions_aborted,
            summary.transactions_failed
        )
    })
}

/// Writes `batch` and the input positions in one transaction; Ok(true) once committed,
/// Ok(false) when aborted on purpose (`--abort-ratio`).
async fn copy_in_transaction(
    producer: &mut TransactionalProducer,
    consumer: &GroupConsumer,
    args: &CopyArgs,
    output_partitions: u32,
    batch: Vec<ConsumerRecord>,
) -> Result<bool, ClientError> {
    producer.begin()?;
    for r in batch {
        let record = ProducerRecord {
            topic: args.to.clone(),
            partition: Some(r.partition % output_partitions),
            key: r.key,
            value: r.value,
            timestamp_ms: Some(r.timestamp_ms),
        };
        // The delivery is checked by commit (a failed record fails the commit).
        drop(producer.send(record).await?);
    }
    producer
        .send_offsets_to_transaction(&consumer.positions(), &consumer.group_metadata())
        .await?;
    if args.abort_ratio > 0.0 && rand::random::<f64>() < args.abort_ratio {
        producer.abort().await?;
        return Ok(false);
    }
    producer.commit().await?;
    Ok(true)
}
