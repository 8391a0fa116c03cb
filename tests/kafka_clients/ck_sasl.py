"""confluent-kafka over SASL: with MECHANISM (or "none": no SASL at all) as USER/PASSWORD,
produce N records to TOPIC (acks=all) and read them back by assign. Prints
{"acked": n, "read": [values]} or, when the cluster refuses it, {"error": "..."}.
Usage: ck_sasl.py BOOTSTRAP MECHANISM USER PASSWORD TOPIC N"""
import json
import sys

import confluent_kafka as ck
import confluent_kafka.admin

bootstrap, mechanism, user, password, topic, n = sys.argv[1:6] + [int(sys.argv[6])]
conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000}
if mechanism != "none":
    conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                 "sasl.username": user, "sasl.password": password})
errors = []
conf["error_cb"] = lambda e: errors.append(str(e))
try:
    ck.admin.AdminClient(conf).list_topics(timeout=4)
except ck.KafkaException as e:
    print(json.dumps({"error": "; ".join([str(e)] + errors)}))
    sys.exit(0)
producer = ck.Producer(dict(conf, acks="all"))
acked = []
for i in range(n):
    producer.produce(topic, value=f"{mechanism}-{i}",
                     on_delivery=lambda err, msg: err is None and acked.append(msg.value()))
producer.flush(30)
consumer = ck.Consumer(dict(conf, **{"group.id": f"sasl-{mechanism}", "enable.auto.commit": False}))
metadata = consumer.list_topics(topic, timeout=8)
consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING)
                 for p in metadata.topics[topic].partitions])
read = []
for _ in range(100):
    for msg in consumer.consume(100, timeout=0.2):
        if msg.error() is None:
            read.append(msg.value().decode())
    if len(read) >= len(acked) and acked:
        break
consumer.close()
print(json.dumps({"acked": len(acked), "read": sorted(read)}))
