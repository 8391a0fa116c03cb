use std::sync::Arc;

use futures::future::try_join_all;
use rill_broker::log::{LogStorage, PartitionKey, PartitionLog, SledStorage};
use rill_common::record::RecordBatchBuilder;
use tokio::time::Instant;

use super::{histogram, progress, Summary};
use crate::node::config::FlushMode;

#[derive(clap::Args)]
pub struct StorageBench {
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Bytes of records per batch (the producer's batch size).
    #[arg(long, default_value_t = 65536)]
    batch_size: usize,
    /// Batches written concurrently (like partitions with a batch in flight each).
    #[arg(long, default_value_t = 6)]
    writers: u64,
    #[arg(long, value_enum, default_value = "group")]
    flush_mode: FlushMode,
    /// Where the three logs go (a temporary directory by default).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// Writes every batch to three sled logs in separate Dbs, as a leader and two followers
/// on this machine would, and acknowledges it once all three are durable (group mode:
/// after the group-commit fsync of each Db; interval mode: at once).
pub async fn run(args: StorageBench) -> anyhow::Result<Summary> {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut replicas: Vec<(Arc<SledStorage>, Arc<PartitionLog>)> = Vec::new();
    for i in 0..3 {
        let storage = Arc::new(SledStorage::open(&dir.path().join(format!("replica-{i}")))?);
        let key = PartitionKey {
            topic_id: "bench".into(),
            partition: 0,
        };
        let (log, _) = storage.open(&key)?;
        replicas.push((storage, Arc::new(log)));
    }
    let per_batch = (args.batch_size / args.record_size.max(1)).max(1) as u64;
    let payload = vec![b'x'; args.record_size];
    let mut builder = RecordBatchBuilder::new();
    for _ in 0..per_batch {
        builder.push(None, Some(&payload), 0);
    }
    let template = builder.build();
    let batches = args.records.div_ceil(per_batch);
    let bar = progress(batches * per_batch, "storage");
    let replicas = Arc::new(replicas);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers.max(1) {
        let (replicas, template, bar) = (replicas.clone(), template.clone(), bar.clone());
        let group = args.flush_mode == FlushMode::Group;
        let mine = (w..batches).step_by(args.writers.max(1) as usize).count();
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram()?;
            for _ in 0..mine {
                let began = Instant::now();
                for (_, log) in replicas.iter() {
                    let mut batch = template.clone();
                    log.append_as_leader(&mut batch, 0)?;
                }
                if group {
                    try_join_all(
                        replicas
                            .iter()
                            .filter_map(|(s, _)| s.flusher())
                            .map(|f| async move { f.flush().await }),
                    )
                    .await?;
                }
                latency.saturating_record(began.elapsed().as_micros().max(1) as u64);
                bar.inc(per_batch);
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = histogram()?;
    for t in tasks {
        latency.add(t.await??)?;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let records = batches * per_batch;
    let mut extra = serde_json::Map::new();
    extra.insert("replicas".into(), serde_json::json!(3));
    extra.insert("batch_records".into(), serde_json::json!(per_batch));
    extra.insert(
        "flush_mode".into(),
        serde_json::json!(format!("{:?}", args.flush_mode).to_lowercase()),
    );
    extra.insert(
        "fsyncs".into(),
        serde_json::json!(replicas
            .iter()
            .filter_map(|(s, _)| s.flusher())
            .map(|f| f.flush_count())
            .sum::<u64>()),
    );
    Ok(Summary {
        workload: "storage".into(),
        records,
        bytes: records * args.record_size as u64,
        elapsed,
        latency_us: latency,
        timeline: Default::default(),
        extra,
    })
}
