"""confluent-kafka: two consumers of one group subscribe to TOPIC (N records already
produced here), read everything between them, commit and leave. Prints a JSON object:
each consumer's assignment and how many (distinct) values were read.
Usage: ck_group.py BOOTSTRAP TOPIC GROUP N STRATEGY"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, group, n, strategy = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
for i in range(n):
    producer.produce(topic, key=str(i), value=str(i))
producer.flush(30)
conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000,
        "partition.assignment.strategy": strategy}
consumers = [ck.Consumer(dict(conf, **{"client.id": f"c{i}"})) for i in range(2)]
for c in consumers:
    c.subscribe([topic])
values, per_consumer = [], [set(), set()]
deadline = time.time() + 90
while time.time() < deadline:
    for i, c in enumerate(consumers):
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            values.append(msg.value().decode())
            per_consumer[i].add(msg.partition())
    both_assigned = all(c.assignment() for c in consumers)
    if len(set(values)) >= n and both_assigned:
        break
assignments = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
for c in consumers:
    try:
        c.commit(asynchronous=False)
    except ck.KafkaException:
        pass  # nothing to commit for a consumer that read nothing
for c in consumers:
    c.close()
print(json.dumps({"read": len(values), "distinct": len(set(values)), "assignments": assignments,
                  "partitions_read": [sorted(p) for p in per_consumer]}))
