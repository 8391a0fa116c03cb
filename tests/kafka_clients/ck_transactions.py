"""confluent-kafka transactions: a transactional producer writes to TOPIC (all its
partitions) in transactions of N records each, committing or aborting them as PLAN says
(c = commit, a = abort, e.g. "cac"); then a read_committed and a read_uncommitted
consumer read the topic from the beginning. Prints one JSON line: the values each
consumer saw and what was committed and aborted.
Usage: ck_transactions.py BOOTSTRAP TOPIC N PLAN"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, n, plan = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
producer = ck.Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": "ck-txn-" + topic,
    "transaction.timeout.ms": 30000,
    "linger.ms": 5,
})
producer.init_transactions(30)
committed, aborted = [], []
for t, decision in enumerate(plan):
    producer.begin_transaction()
    values = [f"t{t}-{i}" for i in range(n)]
    for i, v in enumerate(values):
        producer.produce(topic, key=str(i), value=v)
    producer.flush(30)
    if decision == "c":
        producer.commit_transaction(30)
        committed.extend(values)
    else:
        producer.abort_transaction(30)
        aborted.extend(values)


def read(isolation):
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "ck-txn-reader-" + isolation + "-" + topic,
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = []
    deadline = time.time() + 30
    idle_since = None
    while time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            if seen and idle_since and time.time() - idle_since > 3:
                break
            idle_since = idle_since or time.time()
            continue
        idle_since = None
        if msg.error():
            if msg.error().code() == ck.KafkaError._PARTITION_EOF:
                continue
            raise Exception(msg.error())
        seen.append(msg.value().decode())
    consumer.close()
    return seen


print(json.dumps({
    "committed": committed,
    "aborted": aborted,
    "read_committed": read("read_committed"),
    "read_uncommitted": read("read_uncommitted"),
}), flush=True)
