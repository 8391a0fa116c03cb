#!/usr/bin/env bash
# The partition sweep: for each partition count, a fresh 3-node cluster (release build),
# one RF 3 topic of that many partitions, then
#   - create_s: from `topic create` until every partition has a leader;
#   - idle CPU per node (% of one core) over IDLE_S seconds with nothing to do;
#   - RSS per node and data directory per node (MiB) after that;
#   - an acks=all produce of RECORDS 1 KiB records (rate and p99);
#   - failover: node 3 is SIGKILLed; failover_s is the time until every partition is led
#     by an alive node; it is then started again and isr_restored_s is the time until
#     every partition's ISR holds all three replicas (ISR changes are batched per leader).
# Prints one JSON document (a list, one object per count) on stdout.
#   COUNTS="6 100 1000" IDLE_S=20 RECORDS=20000 bench/partitions.sh > sweep.json
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-6 100 1000}
IDLE_S=${IDLE_S:-20}
RECORDS=${RECORDS:-20000}
RILL=${RILL:-$PWD/target/release/rill}
[ -n "${RILL_SKIP_BUILD:-}" ] || cargo build --release --quiet
WORK=$(mktemp -d)
DEV_PID=
cleanup() {
  if [ -n "$DEV_PID" ]; then kill "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; fi
  if [ -n "${NODE3_PID:-}" ]; then kill "$NODE3_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export RILL_BOOTSTRAP=127.0.0.1:19291,127.0.0.1:19292,127.0.0.1:19293

node_pids() { pgrep -f "node --node-id [0-9]+ --data-dir $WORK/" || true; }

cpu_ticks() { # utime + stime of every node, one line per pid: "pid ticks"
  for pid in $(node_pids); do
    awk -v pid="$pid" '{print pid, $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
  done
}

led_partitions() { # topic [excluded leader]
  "$RILL" topic describe "$1" --json 2>/dev/null |
    python3 -c 'import json,sys; x=int(sys.argv[1]); print(sum(p.get("leader") not in (None, x) for p in json.load(sys.stdin)["partitions"]))' "${2:-0}" 2>/dev/null || echo 0
}

full_isrs() { # topic: partitions whose ISR holds all their replicas
  "$RILL" topic describe "$1" --json 2>/dev/null |
    python3 -c 'import json,sys; print(sum(len(p["isr"]) == len(p["replicas"]) for p in json.load(sys.stdin)["partitions"]))' 2>/dev/null || echo 0
}

results=()
for count in $COUNTS; do
  echo "partitions: $count" >&2
  rm -rf "$WORK/cluster"
  "$RILL" dev --nodes 3 --data-dir "$WORK/cluster" >"$WORK/dev-$count.log" 2>&1 &
  DEV_PID=$!
  for _ in $(seq 1 150); do
    "$RILL" cluster describe --json >/dev/null 2>&1 && break
    sleep 0.2
  done
  sleep 2
  start=$(date +%s.%N)
  "$RILL" topic create sweep --partitions "$count" --replication-factor 3 >/dev/null
  for _ in $(seq 1 1200); do
    [ "$(led_partitions sweep)" = "$count" ] && break
    sleep 0.1
  done
  created=$(date +%s.%N)
  sleep 5 # let the ISRs settle before measuring the idle cost
  before=$(cpu_ticks)
  sleep "$IDLE_S"
  after=$(cpu_ticks)
  hz=$(getconf CLK_TCK)
  idle=$(python3 - "$hz" "$IDLE_S" "$before" "$after" <<'EOF'
import sys
hz, secs = int(sys.argv[1]), float(sys.argv[2])
parse = lambda s: dict(tuple(map(int, l.split())) for l in s.strip().splitlines() if l.strip())
b, a = parse(sys.argv[3]), parse(sys.argv[4])
print(",".join(f"{100.0 * (a[p] - b[p]) / hz / secs:.1f}" for p in sorted(a) if p in b))
EOF
)
  rss=$(for pid in $(node_pids); do awk '/VmRSS/ {printf "%.0f\n", $2 / 1024}' "/proc/$pid/status"; done | paste -sd, -)
  disk=$(for d in "$WORK"/cluster/node*; do du -sm "$d" | cut -f1; done | paste -sd, -)
  "$RILL" bench produce --topic sweep --records "$RECORDS" --record-size 1024 --acks all >"$WORK/produce-$count.json"
  # Failover: SIGKILL node 3, wait until every partition is led elsewhere; start it again
  # (same command line and environment) and wait until every ISR is whole.
  node3=$(pgrep -f "node --node-id 3 --data-dir $WORK/" | head -1)
  mapfile -d '' node3_cmd <"/proc/$node3/cmdline"
  mapfile -d '' node3_env <"/proc/$node3/environ"
  killed=$(date +%s.%N)
  kill -9 "$node3"
  for _ in $(seq 1 1200); do
    [ "$(led_partitions sweep 3)" = "$count" ] && break
    sleep 0.1
  done
  failed_over=$(date +%s.%N)
  env -i "${node3_env[@]}" "${node3_cmd[@]}" >>"$WORK/node3-restart-$count.log" 2>&1 &
  NODE3_PID=$!
  restarted=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    [ "$(full_isrs sweep)" = "$count" ] && break
    sleep 0.1
  done
  isr_restored=$(date +%s.%N)
  kill "$NODE3_PID" 2>/dev/null || true; wait "$NODE3_PID" 2>/dev/null || true
  results+=("$(python3 - "$count" "$start" "$created" "$idle" "$rss" "$disk" "$WORK/produce-$count.json" "$killed" "$failed_over" "$restarted" "$isr_restored" <<'EOF'
import json, sys
count, start, created, idle, rss, disk, produce, killed, failed_over, restarted, isr_restored = sys.argv[1:]
p = json.load(open(produce))
ints = lambda s: [float(x) for x in s.split(",") if x]
print(json.dumps({
    "partitions": int(count),
    "create_s": round(float(created) - float(start), 2),
    "idle_cpu_pct_per_node": ints(idle),
    "rss_mib_per_node": ints(rss),
    "data_dir_mib_per_node": ints(disk),
    "produce_records_per_sec": p.get("records_per_sec"),
    "produce_p99_ms": p.get("latency_ms", {}).get("p99"),
    "failover_s": round(float(failed_over) - float(killed), 2),
    "isr_restored_s": round(float(isr_restored) - float(restarted), 2),
}))
EOF
)")
  kill "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; DEV_PID=
done
(IFS=,; echo "[${results[*]}]")
