"""confluent-kafka: a consumer with a group id but no subscription (assign) reads the first
30 records of a one-partition topic and commits with metadata; a second consumer of the
same group resumes from the committed offset. Prints a JSON object.
Usage: ck_commit.py BOOTSTRAP TOPIC GROUP"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
producer = ck.Producer({"bootstrap.servers": bootstrap})
for i in range(50):
    producer.produce(topic, value=str(i))
producer.flush(30)
conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest"}


def read(consumer, count):
    values, deadline = [], time.time() + 30
    while len(values) < count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            values.append(int(msg.value()))
    return values


first = ck.Consumer(conf)
first.assign([ck.TopicPartition(topic, 0)])
out = {"first": read(first, 30)}
first.commit(offsets=[ck.TopicPartition(topic, 0, 30, metadata="checkpoint-a")], asynchronous=False)
committed = first.committed([ck.TopicPartition(topic, 0)], timeout=20)[0]
out["committed"] = committed.offset
out["metadata"] = committed.metadata
first.close()
second = ck.Consumer(conf)
second.assign([ck.TopicPartition(topic, 0)])
out["second"] = read(second, 20)
second.close()
print(json.dumps(out))
