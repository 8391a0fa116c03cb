"""kafka-python admin: OffsetDelete and DeleteGroups against a live group and an empty one.
GROUP subscribes to TOPIC (3 partitions) and commits; OTHER commits to TOPIC without
subscribing. Prints a JSON object of the results. Usage: kp_group_admin.py BOOTSTRAP TOPIC"""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
out = {}

live = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="live",
                     auto_offset_reset="earliest", enable_auto_commit=False)
deadline = time.time() + 30
while not live.assignment() and time.time() < deadline:
    live.poll(200)
live.commit({TopicPartition(topic, p): OffsetAndMetadata(1, "", -1) for p in range(3)})

other = KafkaConsumer(bootstrap_servers=bootstrap, group_id="other", enable_auto_commit=False)
other.assign([TopicPartition(topic, p) for p in range(3)])
other.commit({TopicPartition(topic, p): OffsetAndMetadata(p + 10, "meta", -1) for p in range(3)})
other.close()


def name(error):
    return error.__name__


def offsets(group):
    listed = admin.list_group_offsets(group)
    return sorted([tp.partition, o.offset] for tp, o in listed.get(group, {}).items())


out["subscribed"] = {str(tp.partition): name(e) for tp, e in admin.delete_group_offsets(
    "live", [TopicPartition(topic, 0)]).items()}
out["delete_live"] = dict(admin.delete_groups(["live"]))
out["deleted_offset"] = {str(tp.partition): name(e) for tp, e in admin.delete_group_offsets(
    "other", [TopicPartition(topic, 0)]).items()}
out["other_left"] = offsets("other")
out["delete_other"] = dict(admin.delete_groups(["other"]))
out["other_after"] = offsets("other")
out["delete_again"] = dict(admin.delete_groups(["other"]))
live.close()
time.sleep(0.5)
out["delete_live_after_close"] = dict(admin.delete_groups(["live"]))
admin.close()
print(json.dumps(out))
