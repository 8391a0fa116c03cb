"""Offset commits at scale through the Kafka listener (confluent-kafka, librdkafka):
COMMITTERS consumers, each committing one partition's offset of its own group (standalone,
as `assign` users and many stream processors do) every INTERVAL seconds, or as fast as
answers come back with INTERVAL 0, for SECONDS. Reports commits per second, commit
latency and how many metadata log entries they cost (the active controller's
rill_raft_last_log_index before and after).

    python bench/commits.py BOOTSTRAP METRICS_URLS TOPIC COMMITTERS INTERVAL SECONDS
"""

import json
import sys
import threading
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition


def last_log_index(urls):
    best = 0
    for url in urls.split(","):
        try:
            text = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("rill_raft_last_log_index "):
                best = max(best, int(float(line.split()[1])))
    return best


def main():
    bootstrap, metrics, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    committers, interval, seconds = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    latencies, errors, lock = [], [0], threading.Lock()
    start_gate = threading.Barrier(committers + 1)
    stop_at = [0.0]

    def committer(i):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"commit-bench-{i}",
                      "enable.auto.commit": False})
        offset = 0
        try:
            # The first commit finds the coordinator; not measured.
            c.commit(offsets=[TopicPartition(topic, i % 6, offset)], asynchronous=False)
        except Exception:
            pass
        start_gate.wait()
        mine = []
        next_at = time.monotonic()
        while time.monotonic() < stop_at[0]:
            offset += 1
            t = time.monotonic()
            try:
                c.commit(offsets=[TopicPartition(topic, i % 6, offset)], asynchronous=False)
                mine.append(time.monotonic() - t)
            except Exception:
                with lock:
                    errors[0] += 1
            if interval > 0:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        with lock:
            latencies.extend(mine)
        c.close()

    threads = [threading.Thread(target=committer, args=(i,)) for i in range(committers)]
    for t in threads:
        t.start()
    before = last_log_index(metrics)
    stop_at[0] = time.monotonic() + seconds
    began = time.monotonic()
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    entries = last_log_index(metrics) - before
    latencies.sort()
    pick = lambda q: 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0
    print(json.dumps({
        "committers": committers, "interval_s": interval, "seconds": round(elapsed, 1),
        "commits": len(latencies), "errors": errors[0],
        "commits_per_sec": round(len(latencies) / elapsed, 1),
        "log_entries_per_sec": round(entries / elapsed, 1),
        "commits_per_log_entry": round(len(latencies) / max(entries, 1), 1),
        "latency_ms": {"p50": round(pick(0.5), 1), "p99": round(pick(0.99), 1)},
    }))


if __name__ == "__main__":
    main()
