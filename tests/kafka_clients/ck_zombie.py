"""confluent-kafka zombie fencing and transaction timeout on TOPIC:
- producer A (transactional id Z) writes 10 records in an open transaction; producer B
  starts with the same id, which fences A and aborts A's transaction; B commits 10
  records; A's commit then fails (fenced);
- producer C (transactional id T, transaction.timeout.ms=3000) writes 10 records and
  never ends its transaction; the coordinator aborts it by itself.
Prints one JSON line: A's commit error, B's values, A's and C's values, and the values a
read_committed consumer sees once C's transaction timed out.
Usage: ck_zombie.py BOOTSTRAP TOPIC"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic = sys.argv[1], sys.argv[2]


def producer(txn_id, timeout_ms=30000):
    p = ck.Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
    })
    p.init_transactions(30)
    return p


def write(p, prefix):
    p.begin_transaction()
    values = [f"{prefix}-{i}" for i in range(10)]
    for v in values:
        p.produce(topic, value=v)
    p.flush(30)
    return values


a = producer("zombie-" + topic)
a_values = write(a, "a")
b = producer("zombie-" + topic)  # fences A, aborts its transaction
b_values = write(b, "b")
b.commit_transaction(30)
a_error = None
try:
    a.commit_transaction(10)
except ck.KafkaException as e:
    a_error = {"code": e.args[0].name(), "fatal": e.args[0].fatal()}

c = producer("timeout-" + topic, timeout_ms=3000)
c_values = write(c, "c")
started = time.time()

consumer = ck.Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "zombie-reader-" + topic,
    "isolation.level": "read_committed",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
consumer.subscribe([topic])
seen = []
# C's open transaction holds read_committed back until the coordinator aborts it.
while time.time() - started < 20:
    msg = consumer.poll(0.5)
    if msg is None or msg.error():
        if len(seen) >= len(b_values) and time.time() - started > 8:
            break
        continue
    seen.append(msg.value().decode())
consumer.close()
print(json.dumps({
    "a_error": a_error,
    "a": a_values,
    "b": b_values,
    "c": c_values,
    "read_committed": seen,
    "waited_s": time.time() - started,
}), flush=True)
