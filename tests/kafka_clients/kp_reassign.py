"""kafka-python admin: AlterPartitionReassignments and ListPartitionReassignments.
Moves TOPIC-0 to TARGET (comma-separated broker ids; one of them stopped, so the move
stays in progress), lists it, cancels it, lists again, and tries an unknown broker.
Prints a JSON object of the results. Usage: kp_reassign.py BOOTSTRAP TOPIC TARGET"""
import json
import sys

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

bootstrap, topic, target = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3].split(",")]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
tp = TopicPartition(topic, 0)
out = {}


def name(error):
    return "ok" if error is None else error.__name__


def listed():
    return {"%s-%d" % (t.topic, t.partition): r
            for t, r in admin.list_partition_reassignments().items()}


out["alter"] = name(admin.alter_partition_reassignments({tp: target})[tp])
out["in_progress"] = listed()
out["filtered"] = len(admin.list_partition_reassignments({topic: [1]}))
out["cancel"] = name(admin.alter_partition_reassignments({tp: None})[tp])
out["after_cancel"] = listed()
out["cancel_again"] = name(admin.alter_partition_reassignments({tp: None})[tp])
out["unknown_broker"] = name(admin.alter_partition_reassignments({tp: [99, 1, 2]})[tp])
out["unknown_topic"] = name(admin.alter_partition_reassignments(
    {TopicPartition("nope", 0): [1, 2, 3]})[TopicPartition("nope", 0)])
admin.close()
print(json.dumps(out))
