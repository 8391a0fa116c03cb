"""confluent-kafka over SASL: with MECHANISM (or "none": no SASL at all) as USER/PASSWORD,
produce N records to TOPIC (acks=all) and read them back by assign; over TLS trusting
CA_FILE when one is given. Prints {"acked": n, "read": [values]} or, when the cluster
refuses it, {"error": "..."}.
Usage: ck_sasl.py BOOTSTRAP MECHANISM USER PASSWORD TOPIC N [CA_FILE]"""
import json
import sys

import confluent_kafka as ck
import confluent_kafka.admin

bootstrap, mechanism, user, password, topic, n = sys.argv[1:6] + [int(sys.argv[6])]
ca_file = sys.argv[7] if len(sys.argv) > 7 else None
conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000}
if mechanism != "none":
    conf.update({"security.protocol": "SASL_SSL" if ca_file else "SASL_PLAINTEXT",
                 "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
elif ca_file:
    conf["security.protocol"] = "SSL"
if ca_file:
    conf["ssl.ca.location"] = ca_file
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
