"""kafka-python's transaction admin (kafka-transactions.sh's calls) against an open
confluent-kafka transaction on TOPIC: ListTransactions (asked of every broker),
DescribeTransactions, DescribeProducers on the partition's leader, and an abort of the
open transaction through WriteTxnMarkers, which must be refused while its coordinator
runs it; then the transaction commits and is described again.
Prints one JSON line.
Usage: kp_txn_admin.py BOOTSTRAP TOPIC"""
import json
import sys
import time

import confluent_kafka as ck
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import AbortTransactionSpec

bootstrap, topic = sys.argv[1], sys.argv[2]
txn_id = "admin-" + topic

producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
producer.init_transactions(30)
producer.begin_transaction()
for i in range(3):
    producer.produce(topic, value=f"v{i}", partition=0)
producer.flush(30)

admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
out = {}
# {broker: [listing]}: every broker is asked; only the coordinator has any.
listed = admin.list_transactions()
out["listed"] = [[t.transactional_id, str(t.state.value)]
                 for ts in listed.values() for t in ts]
ongoing = admin.list_transactions(state_filters=["Ongoing"])
out["listed_ongoing"] = [t.transactional_id for ts in ongoing.values() for t in ts]
described = admin.describe_transactions([txn_id])[txn_id]
out["described"] = {
    "state": str(described.state.value),
    "producer_id": described.producer_id,
    "producer_epoch": described.producer_epoch,
    "partitions": sorted([tp.topic, tp.partition] for tp in described.topic_partitions),
    "started": described.transaction_start_time_ms,
}
tp = TopicPartition(topic, 0)
producers = admin.describe_producers([tp])[tp].active_producers
out["producers"] = [
    {"producer_id": p.producer_id, "epoch": p.producer_epoch,
     "txn_start": p.current_transaction_start_offset}
    for p in producers
]
mine = [p for p in producers if p.producer_id == described.producer_id]
try:
    admin.abort_transaction(AbortTransactionSpec(
        topic_partition=tp, producer_id=mine[0].producer_id,
        producer_epoch=mine[0].producer_epoch, coordinator_epoch=-1))
    out["abort_error"] = None
except Exception as e:  # the broker's refusal, as kafka-python raises it
    out["abort_error"] = type(e).__name__
try:
    admin.describe_transactions(["no-such-" + txn_id])
    out["unknown_error"] = None
except Exception as e:
    out["unknown_error"] = type(e).__name__
producer.commit_transaction(30)
# Committed once the decision is durable; complete once every marker is written.
deadline = time.time() + 15
while True:
    state = str(admin.describe_transactions([txn_id])[txn_id].state.value)
    if state == "CompleteCommit" or time.time() > deadline:
        break
    time.sleep(0.1)
out["after_commit"] = state
admin.close()
print(json.dumps(out))
