//! `rill bench`: produce, consume, e2e, storage and rebalance workloads. Progress on stderr, one JSON
//! summary on stdout (DESIGN.md section 7). With a fixed `--rate`, latency counts from
//! each record's intended send time, so a stall is not hidden (no coordinated omission).

mod consume;
mod e2e;
mod produce;
mod rebalance;
mod storage;

use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(clap::Subcommand)]
enum Workload {
    /// Produce records as fast as possible, or at a fixed rate.
    Produce(produce::ProduceBench),
    /// Consume a topic from the beginning to its end.
    Consume(consume::ConsumeBench),
    /// Produce at a fixed rate and consume the same records: produce-to-consume latency.
    E2e(e2e::E2eBench),
    /// A member joining a stable group: time until every member holds its new
    /// assignment.
    Rebalance(rebalance::RebalanceBench),
    /// The raw write path: three sled logs on this machine, as three replicas would be.
    Storage(storage::StorageBench),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let summary = match args.workload {
        Workload::Produce(a) => produce::run(a).await?,
        Workload::Consume(a) => consume::run(a).await?,
        Workload::E2e(a) => e2e::run(a).await?,
        Workload::Storage(a) => storage::run(a).await?,
        Workload::Rebalance(a) => rebalance::run(a).await?,
    };
    println!("{}", serde_json::to_string(&summary.to_json())?);
    Ok(())
}

/// Latencies in microseconds, up to an hour.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

pub struct Summary {
    pub workload: String,
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    /// Records completed per interval since the start (empty where not kept).
    pub timeline: Timeline,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Records completed in each `TIMELINE_INTERVAL` since a workload's start: throughput
/// over time, for the report's plots.
#[derive(Default)]
pub struct Timeline {
    counts: Vec<u64>,
}

const TIMELINE_INTERVAL: Duration = Duration::from_millis(100);
/// The quantiles of the latency distribution a summary lists (for the plots).
const DISTRIBUTION_QUANTILES: [f64; 15] = [
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0,
];

impl Timeline {
    /// `records` completed `since_start` after the workload began.
    pub fn record(&mut self, since_start: Duration, records: u64) {
        let slot = (since_start.as_millis() / TIMELINE_INTERVAL.as_millis()) as usize;
        // One hour of 100 ms slots at most: a longer run keeps its first hour.
        if slot >= 36_000 {
            return;
        }
        if self.counts.len() <= slot {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += records;
    }

    pub fn merge(&mut self, other: &Timeline) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }
}

impl Summary {
    fn to_json(&self) -> serde_json::Value {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let mut value = json!({
            "workload": self.workload,
            "records": self.records,
            "bytes": self.bytes,
            "seconds": seconds,
            "records_per_sec": self.records as f64 / seconds,
            "mb_per_sec": self.bytes as f64 / seconds / 1_048_576.0,
            "latency_ms": {
                "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999),
                "max": self.latency_us.max() as f64 / 1000.0,
            },
        });
        if let Some(object) = value.as_object_mut() {
            let distribution: Vec<[f64; 2]> =
                DISTRIBUTION_QUANTILES.iter().map(|&q| [q, ms(q)]).collect();
            object.insert("latency_distribution_ms".into(), json!(distribution));
            if !self.timeline.counts.is_empty() {
                object.insert(
                    "timeline".into(),
                    json!({
                        "interval_ms": TIMELINE_INTERVAL.as_millis() as u64,
                        "records": self.timeline.counts,
                    }),
                );
            }
            object.extend(self.extra.clone());
        }
        value
    }
}

pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}
