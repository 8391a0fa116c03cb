"""Reads every partition of TOPIC from the beginning by assign (no group) until it has
seen EXPECTED records or TIMEOUT seconds pass; prints [[partition, offset, key, value]...].
Usage: ck_read.py BOOTSTRAP TOPIC EXPECTED TIMEOUT"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, expected, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
partitions = consumer.list_topics(topic, timeout=20).topics[topic].partitions
consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in partitions])
out = []
deadline = time.time() + timeout
while len(out) < expected and time.time() < deadline:
    msg = consumer.poll(0.5)
    if msg is None or msg.error():
        continue
    key = msg.key().decode() if msg.key() is not None else None
    out.append([msg.partition(), msg.offset(), key, msg.value().decode()])
consumer.close()
print(json.dumps(out))
