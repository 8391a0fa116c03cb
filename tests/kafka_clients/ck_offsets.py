"""confluent-kafka: ListOffsets (earliest, latest, by timestamp, max timestamp),
DeleteRecords and ElectLeaders on a one-partition topic that already holds 100 records
with timestamps 1000, 1001, ... (the largest, 5000, at offset 42).
Prints a JSON object. Usage: ck_offsets.py BOOTSTRAP TOPIC"""
import json
import sys

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, OffsetSpec

bootstrap, topic = sys.argv[1], sys.argv[2]
producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
for i in range(100):
    producer.produce(topic, value=str(i), timestamp=5000 if i == 42 else 1000 + i)
    producer.flush(30)  # one batch per record: offsets by timestamp land inside the log
admin = AdminClient({"bootstrap.servers": bootstrap})
tp = ck.TopicPartition(topic, 0)


def offset(spec):
    return admin.list_offsets({tp: spec})[tp].result().offset


out = {
    "earliest": offset(OffsetSpec.earliest()),
    "latest": offset(OffsetSpec.latest()),
    "for_1010": offset(OffsetSpec.for_timestamp(1010)),
    "for_1050": offset(OffsetSpec.for_timestamp(1050)),
    "for_9999": offset(OffsetSpec.for_timestamp(9999)),
    "max_timestamp": offset(OffsetSpec.max_timestamp()),
}
deleted = admin.delete_records([ck.TopicPartition(topic, 0, 60)])
out["low_watermark"] = next(iter(deleted.values())).result().low_watermark
out["earliest_after_delete"] = offset(OffsetSpec.earliest())
try:
    elected = admin.elect_leaders(ck.ElectionType.PREFERRED, [tp]).result()
    err = elected.get(tp) if isinstance(elected, dict) else None
    out["elect"] = err.name() if err is not None else "ok"
except ck.KafkaException as e:
    out["elect"] = e.args[0].name()
print(json.dumps(out))
