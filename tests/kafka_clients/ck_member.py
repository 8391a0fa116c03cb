"""confluent-kafka: one long-running member of GROUP consuming TOPIC until SIGTERM (then it
closes cleanly). It appends JSON lines to LOG: {"assign": [...]} / {"revoke": [...]} from
the rebalance callbacks and {"p", "o", "v"} per record, flushed before each synchronous
commit, so a SIGKILLed member's log holds everything it committed.
Usage: ck_member.py BOOTSTRAP TOPIC GROUP NAME LOG STRATEGY SESSION_MS [INSTANCE_ID]"""
import json
import signal
import sys

import confluent_kafka as ck

bootstrap, topic, group, name, log_path, strategy = sys.argv[1:7]
session_ms = int(sys.argv[7])
instance_id = sys.argv[8] if len(sys.argv) > 8 else None
log = open(log_path, "a", encoding="utf-8")
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": session_ms, "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": strategy}
if instance_id:
    conf["group.instance.id"] = instance_id
consumer = ck.Consumer(conf)


def event(kind):
    def callback(_consumer, partitions):
        log.write(json.dumps({kind: sorted(tp.partition for tp in partitions)}) + "\n")
        log.flush()
    return callback


consumer.subscribe([topic], on_assign=event("assign"), on_revoke=event("revoke"),
                   on_lost=event("lost"))
while not stopping:
    batch = [m for m in consumer.consume(500, 0.2) if not m.error()]
    if not batch:
        continue
    for m in batch:
        log.write(json.dumps({"p": m.partition(), "o": m.offset(), "v": m.value().decode()}) + "\n")
    log.flush()
    try:
        consumer.commit(asynchronous=False)
    except ck.KafkaException as e:
        # A rebalance or a coordinator move: the records are read again by their next owner.
        log.write(json.dumps({"commit_error": str(e)}) + "\n")
        log.flush()
consumer.close()
log.close()
