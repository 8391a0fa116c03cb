use bytes::Bytes;
use rill_client::{Consumer, ConsumerConfig, GroupConsumer, GroupConsumerConfig, OffsetReset};
use tokio::time::Instant;

use super::{histogram, progress, Summary, Timeline};
use crate::cli::ClientArgs;

#[derive(clap::Args)]
pub struct ConsumeBench {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    topic: String,
    /// Consume as the only member of this group (joining, assignment and committed
    /// offsets included; the group starts from the earliest offsets).
    #[arg(long)]
    group: Option<String>,
}

/// Reads every partition from its log start to the high watermark it had at the start;
/// the latency is that of each poll (one fetch round).
pub async fn run(args: ConsumeBench) -> anyhow::Result<Summary> {
    let mut consumer = Consumer::new(
        args.client.connect()?,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        },
    );
    let partitions = consumer.partitions_of(&args.topic).await?;
    let mut target = 0;
    for tp in &partitions {
        target += consumer.list_offset(tp, OffsetReset::Latest).await?
            - consumer.list_offset(tp, OffsetReset::Earliest).await?;
    }
    consumer.assign(partitions);
    let mut member = match &args.group {
        Some(group) => {
            let mut m = GroupConsumer::new(
                args.client.connect()?,
                GroupConsumerConfig {
                    group_id: group.clone(),
                    client_id: "rill-bench".into(),
                    fetch: ConsumerConfig {
                        auto_offset_reset: OffsetReset::Earliest,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )?;
            m.subscribe(&[&args.topic], None);
            Some(m)
        }
        None => None,
    };
    let bar = progress(target, "consume");
    let mut latency = histogram()?;
    let mut timeline = Timeline::default();
    let (mut records, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while records < target {
        let poll_start = Instant::now();
        let batch = match member.as_mut() {
            Some(m) => m.poll().await?,
            None => consumer.poll().await?,
        };
        latency.saturating_record(poll_start.elapsed().as_micros().max(1) as u64);
        records += batch.len() as u64;
        timeline.record(start.elapsed(), batch.len() as u64);
        bytes += batch
            .iter()
            .map(|r| r.value.as_ref().map_or(0, Bytes::len) as u64)
            .sum::<u64>();
        bar.set_position(records);
    }
    bar.finish_and_clear();
    if let Some(m) = member {
        m.close().await?;
    }
    Ok(Summary {
        workload: "consume".into(),
        records,
        bytes,
        elapsed: start.elapsed(),
        latency_us: latency,
        timeline,
        extra: serde_json::Map::new(),
    })
}
