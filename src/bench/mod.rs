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
    pub extra: serde_json::Map<String, serde_json::Value>,
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
