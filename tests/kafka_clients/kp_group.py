"""kafka-python: a consumer subscribes to TOPIC in GROUP, reads until idle, commits.
Prints {"read": n}. Usage: kp_group.py BOOTSTRAP TOPIC GROUP"""
import json
import sys

from kafka import KafkaConsumer

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=8000)
read = sum(1 for _ in consumer)
consumer.commit()
consumer.close()
print(json.dumps({"read": read}))
