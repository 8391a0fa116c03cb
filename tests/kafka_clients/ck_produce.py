"""confluent-kafka: produces "v0".."v{N-1}" to TOPIC at about RATE records/s (acks=all,
idempotent) and prints {"acked": [values]} of what was acknowledged.
Usage: ck_produce.py BOOTSTRAP TOPIC N RATE"""
import json
import sys
import time

import confluent_kafka as ck

bootstrap, topic, n, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
producer = ck.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                        "linger.ms": 5, "message.timeout.ms": 120000})
acked = []


def delivered(err, msg):
    if err is None:
        acked.append(msg.value().decode())


start = time.time()
for i in range(n):
    while True:
        try:
            producer.produce(topic, key=str(i), value=f"v{i}", on_delivery=delivered)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)
    if i % 5000 == 0:
        print(f"sent {i}, acked {len(acked)}", file=sys.stderr, flush=True)
    ahead = start + (i + 1) / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
left = producer.flush(180)
print(f"flushed, {left} left, acked {len(acked)}", file=sys.stderr, flush=True)
print(json.dumps({"acked": acked}))
