//! `rill bench rebalance`: how long a member joining a stable group takes until every
//! member holds its new assignment (DESIGN.md section 7: target under 1 s). Members run
//! in this process, each polling in its own task as an application thread would.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use rill_client::{ConsumerConfig, GroupConsumer, GroupConsumerConfig, OffsetReset};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{histogram, Summary};
use crate::cli::ClientArgs;

#[derive(clap::Args)]
pub struct RebalanceBench {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    topic: String,
    /// Members of the stable group before the first join.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Members that join, one at a time (one measurement each).
    #[arg(long, default_value_t = 5)]
    joins: usize,
    #[arg(long, default_value = "cooperative-sticky")]
    assignor: String,
}

type Owned = Arc<Mutex<BTreeSet<(String, u32)>>>;

struct Member {
    owned: Owned,
    stop: Arc<AtomicBool>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start_member(args: &RebalanceBench, group: &str, name: String) -> anyhow::Result<Member> {
    let mut consumer = GroupConsumer::new(
        args.client.connect()?,
        GroupConsumerConfig {
            group_id: group.to_string(),
            client_id: name,
            assignors: vec![args.assignor.clone()],
            auto_commit_interval: None,
            fetch: ConsumerConfig {
                auto_offset_reset: OffsetReset::Latest,
                max_wait: Duration::from_millis(50),
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    consumer.subscribe(&[&args.topic], None);
    let owned = Owned::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (o, s) = (owned.clone(), stop.clone());
    let task = tokio::spawn(async move {
        while !s.load(Ordering::SeqCst) {
            consumer.poll().await?;
            if let Ok(mut owned) = o.lock() {
                *owned = consumer.assignment().into_iter().collect();
            }
        }
        consumer.close().await?;
        Ok(())
    });
    Ok(Member { owned, stop, task })
}

/// Every partition owned exactly once, sizes within one of each other, nobody idle
/// (where there are enough partitions).
fn settled(members: &[Member], partitions: usize) -> bool {
    let owned: Vec<BTreeSet<(String, u32)>> = members
        .iter()
        .map(|m| m.owned.lock().map(|o| o.clone()).unwrap_or_default())
        .collect();
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    let unique: BTreeSet<_> = owned.iter().flatten().collect();
    let min = owned.iter().map(BTreeSet::len).min().unwrap_or(0);
    let max = owned.iter().map(BTreeSet::len).max().unwrap_or(0);
    total == partitions
        && unique.len() == partitions
        && max - min <= 1
        && (min > 0 || members.len() > partitions)
}

async fn wait_settled(members: &[Member], partitions: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !settled(members, partitions) {
        if Instant::now() > deadline {
            bail!("REQUEST_TIMED_OUT: the group did not settle within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

pub async fn run(args: RebalanceBench) -> anyhow::Result<Summary> {
    if args.members == 0 || args.joins == 0 {
        bail!("INVALID_REQUEST: --members and --joins must be positive");
    }
    let partitions = rill_client::Consumer::new(args.client.connect()?, ConsumerConfig::default())
        .partitions_of(&args.topic)
        .await?
        .len();
    let group = format!("bench-rebalance-{:x}", rand::random::<u32>());
    let mut members = Vec::new();
    for i in 0..args.members {
        members.push(start_member(&args, &group, format!("member-{i}"))?);
    }
    wait_settled(&members, partitions).await?;
    let mut latency = histogram()?;
    let start = Instant::now();
    for j in 0..args.joins {
        let joined_at = Instant::now();
        members.push(start_member(&args, &group, format!("joiner-{j}"))?);
        wait_settled(&members, partitions).await?;
        let took = joined_at.elapsed();
        eprintln!(
            "join {}: every member holds its new assignment after {took:?}",
            j + 1
        );
        latency.saturating_record(took.as_micros().max(1) as u64);
    }
    let elapsed = start.elapsed();
    for m in &members {
        m.stop.store(true, Ordering::SeqCst);
    }
    for m in members {
        m.task.await??;
    }
    let mut extra = serde_json::Map::new();
    extra.insert("assignor".into(), serde_json::json!(args.assignor));
    extra.insert("partitions".into(), serde_json::json!(partitions));
    extra.insert("initial_members".into(), serde_json::json!(args.members));
    Ok(Summary {
        workload: "rebalance".into(),
        records: args.joins as u64,
        bytes: 0,
        elapsed,
        latency_us: latency,
        timeline: Default::default(),
        extra,
    })
}
