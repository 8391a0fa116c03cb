"""confluent-kafka idempotent producer: sends N records (lz4) to TOPIC and prints one
JSON line per delivery report batch at the end: which values were acknowledged.
Usage: ck_idempotent.py BOOTSTRAP TOPIC N"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
producer = ck.Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 5,
    "message.timeout.ms": 120000,
})
acked, failed = [], []


def report(err, msg):
    if err is None:
        acked.append([msg.partition(), msg.offset(), msg.value().decode()])
    else:
        failed.append([msg.value().decode(), str(err)])


started = time.time()
for i in range(n):
    while True:
        try:
            producer.produce(topic, key=str(i % 97), value=str(i), on_delivery=report)
            break
        except BufferError:
            producer.poll(0.05)
    if i % 1000 == 0:
        producer.poll(0)
        # Progress for the test, which kills leaders while this runs.
        print(json.dumps({"sent": i}), flush=True)
producer.flush(180)
print(json.dumps({"acked": acked, "failed": failed, "seconds": time.time() - started}), flush=True)
