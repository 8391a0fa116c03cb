#!/usr/bin/env bash
# Runs the standard benchmark set on fresh local clusters (release build) and writes
# bench/results.json and bench/REPORT.md. Results are data, not tests.
#   RECORDS=200000 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-200000}
SIZE=1024
cargo build --release --quiet
RILL=$PWD/target/release/rill
# librdkafka (confluent-kafka) for the Kafka-client rows, installed as the tests install it.
KAFKA_PY=$(tests/kafka_clients/setup.sh "$PWD/target/tmp/kafka-clients-venv")
WORK=$(mktemp -d)
DEV_PID=
cleanup() {
  if [ -n "$DEV_PID" ]; then kill "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_alive() { # nodes
  for _ in $(seq 1 150); do
    alive=$("$RILL" cluster describe --json 2>/dev/null | python3 -c 'import json,sys; print(sum(b["state"]=="alive" for b in json.load(sys.stdin)["brokers"]))' 2>/dev/null || echo 0)
    [ "$alive" = "$1" ] && return 0
    sleep 0.2
  done
  echo "cluster of $1 did not start" >&2; return 1
}

start_cluster() { # nodes
  "$RILL" dev --nodes "$1" --data-dir "$WORK/cluster-$1" >"$WORK/dev-$1.log" 2>&1 &
  DEV_PID=$!
  PHASE_CPU_BASE=0
  wait_alive "$1"
}

# `rill dev --secure`: TLS everywhere, SASL and ACLs; the CLI comes in with the admin
# certificate (a super user).
start_secure_cluster() {
  "$RILL" dev --secure --nodes 3 --data-dir "$WORK/cluster-tls" >"$WORK/dev-tls.log" 2>&1 &
  DEV_PID=$!
  local tls=$WORK/cluster-tls/tls
  for _ in $(seq 1 100); do [ -f "$tls/admin-key.pem" ] && break; sleep 0.1; done
  export RILL_TLS_CA=$tls/ca.pem RILL_TLS_CERT=$tls/admin.pem RILL_TLS_KEY=$tls/admin-key.pem
  PHASE_CPU_BASE=0
  wait_alive 3
}

stop_cluster() {
  kill "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; DEV_PID=
}

peak_rss_kb() { # the largest VmHWM of the running nodes
  for pid in $(pgrep -f "$WORK/cluster-"); do grep VmHWM "/proc/$pid/status" 2>/dev/null | awk '{print $2}'; done | sort -n | tail -1
}

# Each node's peak RSS through one phase: appended to rss-phases as "phase KiB" (the
# largest node), then the peaks are reset (clear_refs 5) so the next phase starts afresh.
# It also appends the CPU seconds the nodes used in the phase.
PHASE_PEAK_KB=0
PHASE_CPU_BASE=0
CLK_TCK=$(getconf CLK_TCK)
node_cpu_ticks() { # utime + stime of every running node
  local total=0 ticks
  for pid in $(pgrep -f "node --node-id [0-9]+ --data-dir $WORK/" || true); do
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$(( total + ticks ))
  done
  echo "$total"
}
end_phase() { # phase name
  local kb ticks cpu
  kb=$(peak_rss_kb)
  ticks=$(node_cpu_ticks)
  cpu=$(python3 -c "print(round(max(0, $ticks - $PHASE_CPU_BASE) / $CLK_TCK, 2))")
  PHASE_CPU_BASE=$ticks
  echo "$1|${kb:-0}|$cpu" >>"$WORK/rss-phases"
  [ "${kb:-0}" -gt "$PHASE_PEAK_KB" ] && PHASE_PEAK_KB=${kb:-0}
  for pid in $(pgrep -f "$WORK/cluster-"); do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done
}

echo "bench storage" >&2
"$RILL" bench storage --records "$RECORDS" --record-size $SIZE --dir "$WORK" >"$WORK/storage.json"

leader_of() { # topic partition
  "$RILL" topic describe "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['partitions'][$2]['leader'])"
}

controller_id() {
  "$RILL" cluster describe --json | python3 -c "import json,sys; print(json.load(sys.stdin)['controller']['leader_id'])"
}

# Creates one-partition RF 3 topics PREFIX-1, PREFIX-2, ... until one's leader is (WANT=yes)
# or is not (WANT=no) the active controller's node, and prints its name.
failover_topic() { # prefix want
  local topic leader
  for i in 1 2 3 4 5 6; do
    topic=$1-$i
    "$RILL" topic create "$topic" --partitions 1 --replication-factor 3 >/dev/null
    sleep 0.5
    leader=$(leader_of "$topic" 0)
    if [ "$leader" = "$(controller_id)" ] && [ "$2" = yes ]; then break; fi
    if [ "$leader" != "$(controller_id)" ] && [ "$2" = no ]; then break; fi
  done
  echo "$topic"
}

# SIGKILLs a topic's leader 5 s into a 15 s acks=all load at 1,000 records/s.
failover_run() { # topic output
  "$RILL" bench produce --topic "$1" --records 15000 --record-size $SIZE --acks all --rate 1000 >"$2" &
  local load_pid=$! leader
  sleep 5
  leader=$(leader_of "$1" 0)
  pkill -KILL -f "node --node-id $leader --data-dir $WORK/" || true
  wait "$load_pid"
}

for nodes in 1 3; do
  echo "cluster of $nodes" >&2
  RILL_BOOTSTRAP=$(seq 1 "$nodes" | sed 's/^/127.0.0.1:1929/' | paste -sd, -)
  export RILL_BOOTSTRAP
  start_cluster $nodes
  "$RILL" topic create bench --partitions 6 --replication-factor 1 >/dev/null
  "$RILL" bench produce --topic bench --records "$RECORDS" --record-size $SIZE --acks 1 >"$WORK/produce-$nodes.json"
  end_phase "produce acks=1, $nodes node(s)"
  "$RILL" bench consume --topic bench >"$WORK/consume-$nodes.json"
  end_phase "consume, $nodes node(s)"
  if [ "$nodes" = 3 ]; then
    echo "RF 3, acks=all" >&2
    "$RILL" bench storage --records "$RECORDS" --record-size $SIZE --dir "$WORK" >"$WORK/storage-rf3.json"
    "$RILL" topic create replicated --partitions 6 --replication-factor 3 >/dev/null
    "$RILL" bench produce --topic replicated --records "$RECORDS" --record-size $SIZE --acks all >"$WORK/produce-rf3.json"
    end_phase "produce RF 3 acks=all"
    echo "librdkafka through the Kafka listener: RF 3 acks=all produce, then consume" >&2
    KAFKA_BOOTSTRAP=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
    "$RILL" topic create kafka-bench --partitions 6 --replication-factor 3 >/dev/null
    "$KAFKA_PY" bench/kafka_client.py produce "$KAFKA_BOOTSTRAP" kafka-bench "$RECORDS" $SIZE >"$WORK/kafka-produce-rf3.json"
    end_phase "librdkafka produce RF 3"
    "$KAFKA_PY" bench/kafka_client.py consume "$KAFKA_BOOTSTRAP" kafka-bench "$RECORDS" $SIZE >"$WORK/kafka-consume-rf3.json"
    end_phase "librdkafka consume RF 3"
    "$RILL" bench consume --topic replicated >"$WORK/consume-rf3.json"
    end_phase "consume RF 3"
    # Throughput falls as the cluster's data grows, so the idempotent producer is compared
    # in the order plain, idempotent, idempotent, plain (each half the records).
    echo "acks=all with and without idempotence" >&2
    for run in 1-plain 2-idempotent 3-idempotent 4-plain; do
      flag=; [ "${run#*-}" = idempotent ] && flag=--idempotent
      "$RILL" bench produce --topic replicated --records $(( RECORDS / 2 )) --record-size $SIZE --acks all $flag >"$WORK/produce-rf3-$run.json"
    done
    end_phase "produce RF 3 acks=all, plain and idempotent"
    echo "transactions of 100 and of 1,000 records" >&2
    for size in 100 1000; do
      "$RILL" bench produce --topic replicated --records $(( RECORDS / 2 )) --record-size $SIZE --acks all --transaction-size $size >"$WORK/produce-rf3-txn-$size.json"
    done
    end_phase "transactions"
    echo "rebalance: members join a stable group" >&2
    "$RILL" topic create grouped --partitions 12 --replication-factor 3 >/dev/null
    "$RILL" bench rebalance --topic grouped --members 4 --joins 5 >"$WORK/rebalance.json"
    end_phase "rebalance"
    echo "offset commits: 500 groups committing each second, then 100 as fast as they can" >&2
    METRICS=http://127.0.0.1:19391/metrics,http://127.0.0.1:19392/metrics,http://127.0.0.1:19393/metrics
    "$KAFKA_PY" bench/commits.py "$KAFKA_BOOTSTRAP" "$METRICS" grouped 500 1 20 >"$WORK/commits-paced.json"
    "$KAFKA_PY" bench/commits.py "$KAFKA_BOOTSTRAP" "$METRICS" grouped 100 0 15 >"$WORK/commits-closed.json"
    end_phase "offset commits"
    echo "failover: SIGKILL the leader (not the controller's node) under a fixed-rate acks=all load" >&2
    failover_run "$(failover_topic failover no)" "$WORK/failover.json"
    end_phase "failover"
  fi
  echo "$PHASE_PEAK_KB" >"$WORK/rss-$nodes"
  PHASE_PEAK_KB=0
  stop_cluster
done

# End-to-end latency at 10% of the acks=all peak, on a fresh cluster: the runs above
# leave gigabytes that sled is still compacting, which is not this workload's cost.
echo "e2e at 10% of the acks=all peak" >&2
RILL_BOOTSTRAP=127.0.0.1:19291,127.0.0.1:19292,127.0.0.1:19293
export RILL_BOOTSTRAP
rm -rf "$WORK/cluster-3"
start_cluster 3
"$RILL" topic create e2e --partitions 6 --replication-factor 3 >/dev/null
E2E_RATE=$(python3 -c "import json; print(max(1, round(json.load(open('$WORK/produce-rf3.json'))['records_per_sec'] / 10)))")
"$RILL" bench e2e --topic e2e --rate "$E2E_RATE" --record-size $SIZE --duration-s 30 --acks all >"$WORK/e2e.json"
end_phase "e2e"
echo "failover of the active controller's node, also the partition's leader" >&2
failover_run "$(failover_topic failover-controller yes)" "$WORK/failover-controller.json"
end_phase "failover of the controller's node"
stop_cluster

# The cost of TLS: the same produce (RF 3, acks=all) and consume on a fresh plaintext
# cluster and then on a fresh `rill dev --secure` one.
echo "TLS: plaintext, then TLS, each on a fresh cluster" >&2
for mode in plain tls; do
  if [ "$mode" = tls ]; then start_secure_cluster; else rm -rf "$WORK/cluster-3"; start_cluster 3; fi
  "$RILL" topic create tls-bench --partitions 6 --replication-factor 3 >/dev/null
  "$RILL" bench produce --topic tls-bench --records $(( RECORDS / 2 )) --record-size $SIZE --acks all >"$WORK/tls-produce-$mode.json"
  end_phase "produce RF 3 acks=all, $mode"
  "$RILL" bench consume --topic tls-bench >"$WORK/tls-consume-$mode.json"
  end_phase "consume RF 3, $mode"
  stop_cluster
done
unset RILL_TLS_CA RILL_TLS_CERT RILL_TLS_KEY

# The record-size sweep: RF 3 acks=all produce of about the same bytes in 100 B, 1 KiB
# and 10 KiB records on a fresh cluster, each beside `bench storage` at that size.
echo "record sizes: 100 B, 1 KiB, 10 KiB" >&2
rm -rf "$WORK/cluster-3"
start_cluster 3
for size in 100 1024 10240; do
  count=$(( RECORDS / 2 * 1024 / size ))
  "$RILL" bench storage --records "$count" --record-size $size --dir "$WORK" >"$WORK/size-storage-$size.json"
  "$RILL" topic create "sizes-$size" --partitions 6 --replication-factor 3 >/dev/null
  "$RILL" bench produce --topic "sizes-$size" --records "$count" --record-size $size --acks all >"$WORK/size-produce-$size.json"
  end_phase "record size $size B"
done
stop_cluster

# The partition sweep: what partitions cost when they do nothing, and acks=all produce
# spread over them (bench/partitions.sh, one fresh cluster per count).
echo "partition sweep" >&2
COUNTS=${SWEEP_COUNTS:-6 100 1000 10000} RECORDS=$(( RECORDS / 10 )) RILL_SKIP_BUILD=1 RILL=$RILL \
  bench/partitions.sh >"$WORK/partitions.json"

python3 - "$WORK" <<'PY'
import json, os, platform, subprocess, sys
work = sys.argv[1]
load = lambda name: json.load(open(os.path.join(work, name)))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem_gib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576
machine = f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, Linux {platform.release()}"
storage = load("storage.json")
runs = []
for nodes in (1, 3):
    produce, consume = load(f"produce-{nodes}.json"), load(f"consume-{nodes}.json")
    rss = int(open(os.path.join(work, f"rss-{nodes}")).read().strip() or 0)
    runs.append({"nodes": nodes, "produce": produce, "consume": consume, "peak_rss_mib": round(rss / 1024, 1),
                 "produce_to_storage_ratio": round(produce["records_per_sec"] / storage["records_per_sec"], 2)})
storage_rf3, produce_rf3, failover = load("storage-rf3.json"), load("produce-rf3.json"), load("failover.json")
rebalance = load("rebalance.json")
kafka_produce, kafka_consume, consume_rf3 = load("kafka-produce-rf3.json"), load("kafka-consume-rf3.json"), load("consume-rf3.json")
plain_runs = [load(f"produce-rf3-{run}.json") for run in ("1-plain", "4-plain")]
idempotent_runs = [load(f"produce-rf3-{run}.json") for run in ("2-idempotent", "3-idempotent")]
rate = lambda runs: sum(r["records"] for r in runs) / sum(r["seconds"] for r in runs)
idempotent = dict(idempotent_runs[0], records=sum(r["records"] for r in idempotent_runs),
                  seconds=sum(r["seconds"] for r in idempotent_runs), records_per_sec=rate(idempotent_runs),
                  mb_per_sec=sum(r["mb_per_sec"] * r["seconds"] for r in idempotent_runs) / sum(r["seconds"] for r in idempotent_runs))
replication = {"storage": storage_rf3, "produce_acks_all": produce_rf3, "failover": failover,
               "produce_to_storage_ratio": round(produce_rf3["records_per_sec"] / storage_rf3["records_per_sec"], 2),
               "failover_gap_ms": round(failover["max_ack_gap_ms"], 1),
               "failover_controller": load("failover-controller.json")}
replication["failover_controller_gap_ms"] = round(replication["failover_controller"]["max_ack_gap_ms"], 1)
replication["produce_acks_all_plain_abba"] = plain_runs
replication["produce_acks_all_idempotent_abba"] = idempotent_runs
replication["idempotence_overhead_pct"] = round(100 * (1 - rate(idempotent_runs) / rate(plain_runs)), 1)
transactional = {size: load(f"produce-rf3-txn-{size}.json") for size in (100, 1000)}
replication["produce_acks_all_transactional"] = {str(k): v for k, v in transactional.items()}
e2e = load("e2e.json")
e2e["p99_over_p50"] = round(e2e["latency_ms"]["p99"] / max(e2e["latency_ms"]["p50"], 1e-9), 2)
tls = {mode: {"produce_rf3_acks_all": load(f"tls-produce-{mode}.json"), "consume_rf3": load(f"tls-consume-{mode}.json")}
       for mode in ("plain", "tls")}
for kind in ("produce_rf3_acks_all", "consume_rf3"):
    tls[f"{kind}_tls_over_plain"] = round(tls["tls"][kind]["records_per_sec"] / tls["plain"][kind]["records_per_sec"], 2)
sweep = load("partitions.json")
record_sizes = []
for size in (100, 1024, 10240):
    produce_s, storage_s = load(f"size-produce-{size}.json"), load(f"size-storage-{size}.json")
    record_sizes.append({"record_size": size, "produce": produce_s, "storage": storage_s,
                         "produce_to_storage_ratio": round(produce_s["records_per_sec"] / storage_s["records_per_sec"], 2)})
rss_phases = [{"phase": phase, "peak_rss_mib": round(int(kb) / 1024, 1), "node_cpu_s": float(cpu)}
              for phase, kb, cpu in (line.split("|") for line in open(os.path.join(work, "rss-phases")).read().splitlines() if line.strip())]
cpu_of = {p["phase"]: p["node_cpu_s"] for p in rss_phases}
replication["node_cpu_s_per_mb"] = round(cpu_of.get("produce RF 3 acks=all", 0) / (produce_rf3["bytes"] / 1048576), 3)
commits = {"paced": load("commits-paced.json"), "closed_loop": load("commits-closed.json")}
results = {"machine": machine, "storage": storage, "runs": runs, "replication": replication, "rebalance": rebalance,
           "tls": tls, "partitions": sweep, "rss_phases": rss_phases, "record_sizes": record_sizes, "offset_commits": commits,
           "e2e": e2e, "kafka_clients": {"produce_rf3_acks_all": kafka_produce, "consume_rf3": kafka_consume,
                                          "rill_consume_rf3": consume_rf3}}
json.dump(results, open("bench/results.json", "w"), indent=2)
row = lambda name, s: f"| {name} | {s['records']} | {s['records_per_sec']:.0f} | {s['mb_per_sec']:.1f} | {s['latency_ms']['p50']:.1f} | {s['latency_ms']['p99']:.1f} | {s['latency_ms']['max']:.1f} |"
lines = [
    "# Benchmark report", "",
    f"Machine: {machine}. Produced by `bench/run.sh` (release build, 1 KiB records, topics of",
    "6 partitions; RF 1 unless the row says RF 3).", "",
    "| workload | records | records/s | MB/s | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|---|",
    row(f"storage (3 sled logs, flush {storage.get('flush_mode')})", storage),
]
for r in runs:
    lines.append(row(f"produce acks=1, {r['nodes']} node(s)", r["produce"]))
    lines.append(row(f"consume, {r['nodes']} node(s)", r["consume"]))
lines.append(row("storage, same run as the RF 3 rows", storage_rf3))
lines.append(row("produce RF 3 acks=all, 3 nodes", produce_rf3))
lines.append(row("librdkafka produce RF 3 acks=all, Kafka listener (same run, after the row above)", kafka_produce))
lines.append(row("consume RF 3, Rill client", consume_rf3))
lines.append(row("librdkafka consume RF 3, Kafka listener (latency per consume() call)", kafka_consume))
lines.append(row("produce RF 3 acks=all idempotent (runs 2 and 3 of plain, idem, idem, plain; latency of run 2)", idempotent))
for size, t in transactional.items():
    lines.append(row(f"produce RF 3 acks=all in transactions of {size} records (latency to the commit)", t))
lines.append(row("produce RF 3 acks=all at 1000/s, leader SIGKILLed", failover))
lines.append(row("produce RF 3 acks=all at 1000/s, leader and controller SIGKILLed (fresh cluster)", replication["failover_controller"]))
lines.append(row(f"e2e RF 3 acks=all at {e2e['rate']:.0f}/s (10% of peak, fresh cluster), produce to consume", e2e))
lines += ["", "| replication (3 nodes, RF 3, acks=all, min.insync.replicas 2) | value | target |", "|---|---|---|",
          f"| produce / storage (same run) | {replication['produce_to_storage_ratio']} | >= 0.8 |",
          f"| failover gap: last ack before the SIGKILL of the leader to the first after | {replication['failover_gap_ms']} ms | < 1000 ms |",
          f"| the same when the leader's node is also the active controller (a Raft election first) | {replication['failover_controller_gap_ms']} ms | |",
          f"| idempotent producer overhead (records/s: plain, idem, idem, plain) | {replication['idempotence_overhead_pct']} % | < 10 % |",
          f"| e2e at 10% of peak: p99 / p50 | {e2e['p99_over_p50']} | <= 3 |",
          f"| CPU of the three nodes per MB produced (RF 3 acks=all) | {replication['node_cpu_s_per_mb']} s | |"]
lines += ["", "| consumer group (3 nodes, 12 partitions, cooperative-sticky) | value | target |", "|---|---|---|",
          f"| a member joins a stable group of 4 to 8: until every member holds its new assignment, p50 / max of {rebalance['records']} joins | {rebalance['latency_ms']['p50']:.0f} / {rebalance['latency_ms']['max']:.0f} ms | < 500 ms |"]
lines += ["", "| TLS (fresh 3-node clusters, RF 3, 6 partitions; plaintext, then `rill dev --secure`) | records | records/s | MB/s | p50 ms | p99 ms | max ms |",
          "|---|---|---|---|---|---|---|---|---|"]
for mode, label in (("plain", "plaintext"), ("tls", "TLS (mutual between nodes, client certificate)")):
    lines.append(row(f"produce acks=all, {label}", tls[mode]["produce_rf3_acks_all"]))
    lines.append(row(f"consume, {label}", tls[mode]["consume_rf3"]))
lines += ["", "| cost of TLS | TLS / plaintext records/s |", "|---|---|",
          f"| produce RF 3 acks=all | {tls['produce_rf3_acks_all_tls_over_plain']} |",
          f"| consume RF 3 | {tls['consume_rf3_tls_over_plain']} |"]
lines += ["", "| offset commits (Kafka listener, confluent-kafka, one group per committer) | commits/s | metadata log entries/s | commits per entry | p50 ms | p99 ms |",
          "|---|---|---|---|---|---|"]
for label, c in (("500 committers, each once a second", commits["paced"]), ("100 committers, each as fast as answers come", commits["closed_loop"])):
    lines.append(f"| {label} | {c['commits_per_sec']:.0f} | {c['log_entries_per_sec']:.1f} | {c['commits_per_log_entry']} | {c['latency_ms']['p50']} | {c['latency_ms']['p99']} |")
lines += ["", "| record size (fresh 3-node cluster, RF 3, acks=all, 6 partitions) | records | storage records/s | produce records/s | produce MB/s | produce / storage | p50 ms | p99 ms |",
          "|---|---|---|---|---|---|---|---|"]
lines += [f"| {r['record_size']} B | {r['produce']['records']} | {r['storage']['records_per_sec']:.0f} | {r['produce']['records_per_sec']:.0f} | {r['produce']['mb_per_sec']:.1f} | {r['produce_to_storage_ratio']} | {r['produce']['latency_ms']['p50']:.1f} | {r['produce']['latency_ms']['p99']:.1f} |" for r in record_sizes]
fmt = lambda xs: " / ".join(f"{x:g}" for x in xs)
lines += ["", "| partitions (one RF 3 topic, fresh 3-node cluster) | created and led (s) | idle CPU per node (% of a core) | RSS per node (MiB) | data directory per node (MiB) | produce acks=all (records/s) | produce p99 (ms) | node 3 SIGKILLed: all led again (s) | node 3 back: all ISRs whole (s) |",
          "|---|---|---|---|---|---|---|---|---|"]
lines += [f"| {s['partitions']} | {s['create_s']} | {fmt(s['idle_cpu_pct_per_node'])} | {fmt(s['rss_mib_per_node'])} | {fmt(s['data_dir_mib_per_node'])} | {s['produce_records_per_sec']:.0f} | {s['produce_p99_ms']:.0f} | {s.get('failover_s', '-')} | {s.get('isr_restored_s', '-')} |" for s in sweep]
lines += ["", "| phase | peak RSS of the largest node (MiB; target <= 150) | CPU of all nodes (s) |", "|---|---|---|"]
lines += [f"| {p['phase']} | {p['peak_rss_mib']} | {p['node_cpu_s']} |" for p in rss_phases]
lines += ["", "| cluster | produce / storage | peak node RSS (MiB) |", "|---|---|---|"]
lines += [f"| {r['nodes']} node(s) | {r['produce_to_storage_ratio']} | {r['peak_rss_mib']} |" for r in runs]
lines += ["", "Produce latency is from the send call (no fixed rate); consume latency is per poll",
          "(one fetch round). `bench storage` writes each batch to three sled Dbs and waits for",
          "the group-commit fsync of all three: the ceiling for RF 3 produce on this machine.",
          "The failover gap is the longest silence between two acks of the fixed-rate producer",
          "(`max_ack_gap_ms`): the leader's death is noticed when its heartbeats stop and its port",
          "refuses a probe, the controller fences it and elects an ISR member, the producer retries.",
          "A joining member's time runs from its creation (JoinGroup) until every member polled its",
          "new assignment: two cooperative rebalances, each noticed at once through a held heartbeat.",
          "E2e latency runs from a record's intended send time (fixed rate) to the poll that",
          "returned it: replication to the ISR and the high watermark included.", "",
          "![latency distribution](latency.png)", "", "![throughput over time](throughput.png)"]
open("bench/REPORT.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
bench/plots.sh
