#!/usr/bin/env bash
# The chaos suite. A three-node cluster from deploy/docker-compose.yml runs in network
# namespaces (rill-netns: root and iproute2 needed, no Docker); a workload runs against it
# (`rill verify` at acks=all with the idempotent producer, `rill verify` in transactions
# with a third aborted, and a consumer group that commits); a seeded fault schedule
# kills, pauses and partitions nodes; after healing, the invariants of DESIGN.md section 6
# are checked and a JSON report is written. The same seed replays the same schedule.
#
#   tests/chaos/run.sh --duration-s 1200 --seed 42 --report tests/chaos/report.json
#
#   tests/chaos/run.sh --secure ...   # deploy/docker-compose.secure.yml: mutual TLS between
#                                     # nodes, TLS and SASL for clients (certificates made
#                                     # in deploy/tls on first use)
#
# RILL and RILL_NETNS name the binaries (default: the release builds), RILL_COMPOSE the
# compose file; RILL_NETNS_PREFIX
# names the namespaces (default rillnet-), so two runs can share a machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=120
SEED=$(( $(date +%s) % 100000 ))
REPORT=
SECURE=
while [ $# -gt 0 ]; do
  case "$1" in
    --secure) SECURE=1; shift ;;
    --duration-s) DURATION=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --report) REPORT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
RILL=$(realpath "${RILL:-target/release/rill}")
if [ -n "$SECURE" ]; then
  COMPOSE=$(realpath "${RILL_COMPOSE:-deploy/docker-compose.secure.yml}")
  TLS=$(dirname "$COMPOSE")/tls
  if [ ! -f "$TLS/ca.pem" ]; then
    "$RILL" certs --dir "$TLS" --nodes 1,2,3 --host 'node{id}' --host localhost --host 127.0.0.1 >&2
  fi
  # Every client command (they run through `ip netns exec`) presents the admin certificate.
  export RILL_TLS_CA=$TLS/ca.pem RILL_TLS_CERT=$TLS/admin.pem RILL_TLS_KEY=$TLS/admin-key.pem
else
  COMPOSE=$(realpath "${RILL_COMPOSE:-deploy/docker-compose.yml}")
fi
NETNS=$(realpath "${RILL_NETNS:-target/release/rill-netns}")
PREFIX=${RILL_NETNS_PREFIX:-rillnet-}
STATE=$(mktemp -d /tmp/rill-chaos.XXXXXX)
BOOTSTRAP=node1:19291,node2:19291,node3:19291
PIDS=()

N() { "$NETNS" --compose "$COMPOSE" --rill "$RILL" --state "$STATE" --prefix "$PREFIX" "$@"; }
# A client command in the client namespace (on the majority side of every partition).
C() { ip netns exec "${PREFIX}client" "$RILL" "$@" --bootstrap "$BOOTSTRAP"; }
log() { echo "[chaos $(date +%T)] $*" >&2; }

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}" ${VERIFY:-}; do kill -9 "$pid" 2>/dev/null || true; done
  N down >/dev/null 2>&1 || true
  # A failed run keeps its logs (workload, consumers, nodes) for the post-mortem.
  if [ "$status" -eq 0 ]; then rm -rf "$STATE"; else log "failed: logs kept in $STATE"; fi
}
trap cleanup EXIT

log "seed $SEED, duration ${DURATION}s (replay with --seed $SEED)${SECURE:+, security on (mutual TLS, SASL)}"
RANDOM=$SEED
N down >/dev/null 2>&1 || true
N up >&2

wait_for() { # seconds description command...
  local limit=$1 what=$2; shift 2
  local deadline=$(( SECONDS + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}
all_alive() {
  C cluster describe --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(b["state"]=="alive" for b in d["brokers"])==3 else 1)'
}
all_led() {
  C topic describe chaos --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if all(p["leader"] is not None for p in d["partitions"]) else 1)'
}
leader_of() { # partition
  C topic describe chaos --json | python3 -c "import json,sys; print(json.load(sys.stdin)['partitions'][$1]['leader'] or '')"
}
follower_of() { # partition
  C topic describe chaos --json | python3 -c "import json,sys; p=json.load(sys.stdin)['partitions'][$1]; print(next((r for r in p['replicas'] if r!=p['leader']), ''))"
}
controller() {
  C cluster describe --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["controller"]["leader_id"] or "")'
}

wait_for 60 "three alive brokers" all_alive
C topic create chaos --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >&2
C topic create chaos-txn --partitions 3 --replication-factor 3 --config min.insync.replicas=2 >&2
wait_for 30 "partition leaders" all_led

log "workload: rill verify (acks=all, idempotent) and two group consumers"
ip netns exec "${PREFIX}client" "$RILL" verify --topic chaos --duration-s "$DURATION" --rate 100 \
  --acks all --idempotent --read-timeout-s 180 --bootstrap "$BOOTSTRAP" >"$STATE/verify.json" 2>"$STATE/verify.log" &
VERIFY=$!
ip netns exec "${PREFIX}client" "$RILL" verify --topic chaos-txn --duration-s "$DURATION" --rate 50 \
  --transactional-id chaos-verifier --abort-ratio 0.3 --transaction-size 20 --read-timeout-s 180 \
  --bootstrap "$BOOTSTRAP" >"$STATE/verify-txn.json" 2>"$STATE/verify-txn.log" &
VERIFY_TXN=$!
for i in 1 2; do
  ip netns exec "${PREFIX}client" "$RILL" consume chaos --group chaos-readers --from-beginning --json \
    --session-timeout-ms 6000 --bootstrap "$BOOTSTRAP" >"$STATE/consumer-$i.jsonl" 2>"$STATE/consumer-$i.log" &
  PIDS+=($!)
done

FAULTS=()
record() { FAULTS+=("{\"at_s\": $SECONDS, \"fault\": \"$1\", \"node\": \"$2\"}"); log "fault: $1 $2"; }
START=$SECONDS
while [ $(( SECONDS - START )) -lt $(( DURATION - 10 )) ]; do
  node=$(( RANDOM % 3 + 1 ))
  case $(( RANDOM % 6 )) in
    0) record kill-restart "node$node"; N kill "node$node" || true; sleep 2; N start "node$node" || true ;;
    1) record pause-resume "node$node"; N pause "node$node" || true; sleep 4; N resume "node$node" || true ;;
    2) l=$(leader_of $(( RANDOM % 6 )) || true); l=${l:-$node}
       record partition-leader "node$l"; N partition "node$l" || true; sleep 5; N heal ;;
    3) f=$(follower_of $(( RANDOM % 6 )) || true); f=${f:-$node}
       record partition-follower "node$f"; N partition "node$f" || true; sleep 5; N heal ;;
    4) c=$(controller || true); c=${c:-$node}
       record partition-controller "node$c"; N partition "node$c" || true; sleep 5; N heal ;;
    5) record kill-all all; for n in 1 2 3; do N kill "node$n" || true; done; sleep 1
       for n in 1 2 3; do N start "node$n" || true; done ;;
  esac
  sleep $(( 2 + RANDOM % 3 ))
done
N heal
for n in 1 2 3; do
  if N status | grep -q "^node$n.*stopped"; then N start "node$n"; fi
done
HEALED=$SECONDS
LED=true
wait_for 10 "every partition led within 10 s of healing" all_led || LED=false
LEADERS_AFTER_S=$(( SECONDS - HEALED ))
wait_for 60 "three alive brokers" all_alive || true

log "waiting for verify to read everything back"
VERIFY_OK=true
wait "$VERIFY" || VERIFY_OK=false
VERIFY_TXN_OK=true
wait "$VERIFY_TXN" || VERIFY_TXN_OK=false

# Replicas agree below the high watermark (guarantee 2).
checksums_agree() {
  for tp in "chaos 0" "chaos 1" "chaos 2" "chaos 3" "chaos 4" "chaos 5" \
            "chaos-txn 0" "chaos-txn 1" "chaos-txn 2"; do
    # shellcheck disable=SC2086
    C replicas $tp --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d["replicas"]
ok = all("error" not in x for x in r) and len({(x["checksum"], x["checked_up_to"], x["log_end_offset"]) for x in r}) == 1
sys.exit(0 if ok else 1)' || return 1
  done
}
CHECKSUMS=true
wait_for 60 "replica checksums to agree" checksums_agree || CHECKSUMS=false

# The group: let the consumers catch up, stop them, then check committed offsets against
# what they printed (nothing below a committed offset was skipped) and the high watermark.
caught_up() {
  C group describe chaos-readers --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
o = d["offsets"]
sys.exit(0 if len(o) == 6 and all(x["lag"] == 0 for x in o) else 1)'
}
GROUP_CAUGHT_UP=true
wait_for 60 "the group to commit everything" caught_up || GROUP_CAUGHT_UP=false
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
sleep 1
C group describe chaos-readers --json >"$STATE/group.json" || echo '{}' >"$STATE/group.json"

FAULTS_JSON=$(IFS=,; echo "[${FAULTS[*]:-}]")
python3 - "$STATE" "$SEED" "$DURATION" "$FAULTS_JSON" "$VERIFY_OK" "$CHECKSUMS" "$LED" \
  "$LEADERS_AFTER_S" "$GROUP_CAUGHT_UP" "${REPORT:-}" "$VERIFY_TXN_OK" "${SECURE:-}" <<'PY'
import glob, json, os, sys
state, seed, duration, faults, verify_ok, checksums, led, led_s, caught_up, report, verify_txn_ok, secure = sys.argv[1:]
def verdict_of(name):
    try:
        return json.load(open(os.path.join(state, name + ".json")))
    except Exception:
        return {"ok": False, "error": open(os.path.join(state, name + ".log")).read()[-2000:]}
verdict = verdict_of("verify")
txn = verdict_of("verify-txn")
group = json.load(open(os.path.join(state, "group.json")))
printed = {}
for f in glob.glob(os.path.join(state, "consumer-*.jsonl")):
    for line in open(f):
        if line.strip():
            r = json.loads(line)
            printed.setdefault(r["partition"], set()).add(r["offset"])
skipped = []
for o in group.get("offsets", []):
    seen = printed.get(o["partition"], set())
    start = min(seen) if seen else 0
    missing = [x for x in range(start, o["committed"]) if x not in seen]
    if missing or (o["log_end_offset"] >= 0 and o["committed"] > o["log_end_offset"]):
        skipped.append({"partition": o["partition"], "committed": o["committed"], "missing": missing[:10]})
faults = json.loads(faults)
result = {
    "seed": int(seed), "duration_s": int(duration), "secure": secure == "1",
    "faults_injected": len(faults), "faults": faults,
    "acked": verdict.get("acked"), "failed": verdict.get("failed"), "unknown": verdict.get("unknown"),
    "lost": len(verdict.get("lost", [])) if "lost" in verdict else None,
    "duplicates": len(verdict.get("duplicates", [])) if "duplicates" in verdict else None,
    "inconsistent_offsets": len(verdict.get("inconsistent_offsets", [])) if "inconsistent_offsets" in verdict else None,
    "verify_ok": verdict.get("ok") is True and verify_ok == "true",
    "checksums_agree": checksums == "true",
    "all_partitions_led_within_10s_of_healing": led == "true", "leaders_after_heal_s": int(led_s),
    "group_caught_up": caught_up == "true", "group_committed_without_skips": not skipped, "group_problems": skipped,
    "transactions": {
        "committed_records": txn.get("acked"), "aborted_or_failed_records": txn.get("failed"),
        "unknown": txn.get("unknown"),
        "lost": len(txn.get("lost", [])) if "lost" in txn else None,
        "aborted_read": len(txn.get("aborted_read", [])) if "aborted_read" in txn else None,
        "duplicates": len(txn.get("duplicates", [])) if "duplicates" in txn else None,
        "verify_ok": txn.get("ok") is True and verify_txn_ok == "true",
        "error": txn.get("error"),
    },
}
result["ok"] = all([result["verify_ok"], result["duplicates"] == 0, result["checksums_agree"],
                    result["transactions"]["verify_ok"], result["transactions"]["duplicates"] == 0,
                    result["all_partitions_led_within_10s_of_healing"],
                    result["group_caught_up"], result["group_committed_without_skips"]])
text = json.dumps(result, indent=2)
print(text)
if report:
    open(report, "w").write(text + "\n")
sys.exit(0 if result["ok"] else 1)
PY
