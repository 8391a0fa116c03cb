"""Plots of bench/results.json, written beside REPORT.md:
  latency.png     the latency distribution (quantile plot) of the main workloads;
  throughput.png  records completed per second over each run, so stalls and slowdowns show.
Run by bench/run.sh with the plotting venv's python (bench/plots.sh installs matplotlib).
  python bench/plots.py bench/results.json bench/
"""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series(results):
    """(label, summary) for each workload worth plotting, in the report's order."""
    replication = results["replication"]
    out = [
        ("produce RF 3 acks=all", replication["produce_acks_all"]),
        ("produce RF 3 acks=all idempotent", replication["produce_acks_all_idempotent_abba"][0]),
        ("e2e at 10% of peak", results["e2e"]),
        ("produce at 1000/s, leader SIGKILLed", replication["failover"]),
        ("produce at 1000/s, leader and controller SIGKILLed", replication["failover_controller"]),
    ]
    for row in results.get("record_sizes", []):
        out.append((f"produce RF 3 acks=all, {row['record_size']} B records", row["produce"]))
    return out


def latency_plot(results, path):
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, summary in series(results):
        points = summary.get("latency_distribution_ms")
        if not points:
            continue
        # x: the quantile as "nines" (0.9 -> 1, 0.99 -> 2) so the tail is readable.
        xs, ys = [], []
        for q, ms in points:
            if q >= 1.0:
                continue
            xs.append(-math.log10(1 - q) if q > 0 else 0.0)
            ys.append(max(ms, 0.01))
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ticks = [0, 0.301, 1, 2, 3, 4]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["p0", "p50", "p90", "p99", "p99.9", "p99.99"])
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_xlabel("quantile")
    ax.set_title("Latency distribution (3 nodes, 1 KiB records unless named)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_plot(results, path):
    labeled = [(label, s) for label, s in series(results) if s.get("timeline")]
    fig, axes = plt.subplots(len(labeled), 1, figsize=(9, 2.2 * len(labeled)), squeeze=False)
    for ax, (label, summary) in zip(axes[:, 0], labeled):
        timeline = summary["timeline"]
        interval_s = timeline["interval_ms"] / 1000
        # Per-interval counts, shown as records per second.
        rates = [n / interval_s for n in timeline["records"]]
        times = [i * interval_s for i in range(len(rates))]
        ax.plot(times, rates, linewidth=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("records/s", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel(f"seconds since the start (counted per {labeled[0][1]['timeline']['interval_ms']} ms)"
                           if labeled else "seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    results = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    latency_plot(results, os.path.join(out, "latency.png"))
    throughput_plot(results, os.path.join(out, "throughput.png"))


if __name__ == "__main__":
    main()
