"""confluent-kafka AdminClient: list and describe a live consumer group (one member that
subscribed to TOPIC). Prints a JSON object. Usage: ck_describe_groups.py BOOTSTRAP TOPIC GROUP"""
import json
import sys
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "describer"})
consumer.subscribe([topic])
deadline = time.time() + 30
while not consumer.assignment() and time.time() < deadline:
    consumer.poll(0.2)
admin = AdminClient({"bootstrap.servers": bootstrap})
listed = admin.list_consumer_groups().result(timeout=20)
out = {"listed": sorted([g.group_id, str(g.state)] for g in listed.valid)}
described = admin.describe_consumer_groups([group])[group].result(timeout=20)
out["state"] = str(described.state)
out["members"] = [{"client_id": m.client_id,
                   "partitions": sorted(tp.partition for tp in m.assignment.topic_partitions)}
                  for m in described.members]
consumer.close()
print(json.dumps(out))
