"""kafka-python: produce N records with each of gzip and snappy (its idempotent default),
then read the topic back by assign. Prints {"acked": n, "read": [[partition, offset, value]...]}.
Usage: kp_roundtrip.py BOOTSTRAP TOPIC N"""
import json
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked = 0
for codec in ("gzip", "snappy"):
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, acks="all",
                             linger_ms=5)
    futures = [producer.send(topic, key=str(i % 7).encode(), value=f"{codec}-{i}".encode())
               for i in range(n)]
    producer.flush(60)
    acked += sum(1 for f in futures if f.get(timeout=60) is not None)
    producer.close()
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         consumer_timeout_ms=5000)
partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
consumer.assign(partitions)
consumer.seek_to_beginning(*partitions)
read = [[m.partition, m.offset, m.value.decode()] for m in consumer]
consumer.close()
print(json.dumps({"acked": acked, "read": read}))
