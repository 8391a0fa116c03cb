"""confluent-kafka AdminClient: create, describe, alter configs, add partitions, delete.
Prints a JSON object with what it saw. Usage: ck_admin.py BOOTSTRAP TOPIC"""
import json
import sys

from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic)

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})
out = {}
for _, f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3,
                                          config={"retention.ms": "3600000"})]).items():
    f.result()
try:
    for _, f in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).items():
        f.result()
    out["create_again"] = "ok"
except Exception as e:  # noqa: BLE001 - the error is what the test checks
    out["create_again"] = e.args[0].name()
md = admin.list_topics(timeout=10)
out["brokers"] = sorted(b.id for b in md.brokers.values())
t = md.topics[topic]
out["partitions"] = len(t.partitions)
out["replicas"] = sorted(len(p.replicas) for p in t.partitions.values())
resource = ConfigResource("topic", topic)
for _, f in admin.describe_configs([resource]).items():
    out["retention_before"] = f.result()["retention.ms"].value
change = ConfigResource("topic", topic, incremental_configs=[
    ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
for _, f in admin.incremental_alter_configs([change]).items():
    f.result()
for _, f in admin.describe_configs([resource]).items():
    out["retention_after"] = f.result()["retention.ms"].value
for _, f in admin.create_partitions([NewPartitions(topic, 5)]).items():
    f.result()
out["partitions_after"] = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
for _, f in admin.delete_topics([topic]).items():
    f.result()
out["topics_after_delete"] = sorted(t for t in admin.list_topics(timeout=10).topics if t == topic)
print(json.dumps(out))
