"""kafka-python over SASL_PLAINTEXT with MECHANISM as USER/PASSWORD: produce N records to
TOPIC and read them back by assign. Prints {"acked": n, "read": [values]} or {"error": "..."}.
Usage: kp_sasl.py BOOTSTRAP MECHANISM USER PASSWORD TOPIC N"""
import json
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

bootstrap, mechanism, user, password, topic, n = sys.argv[1:6] + [int(sys.argv[6])]
sasl = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": user, "sasl_plain_password": password}
try:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **sasl)
except KafkaError as e:
    print(json.dumps({"error": repr(e)}))
    sys.exit(0)
futures = [producer.send(topic, value=f"kp-{i}".encode()) for i in range(n)]
producer.flush(30)
acked = sum(1 for f in futures if f.get(timeout=30) is not None)
producer.close()
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         consumer_timeout_ms=3000, **sasl)
partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
consumer.assign(partitions)
consumer.seek_to_beginning(*partitions)
read = sorted(m.value.decode() for m in consumer)
consumer.close()
print(json.dumps({"acked": acked, "read": read}))
