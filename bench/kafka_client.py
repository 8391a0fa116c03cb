"""librdkafka (confluent-kafka) against Rill's Kafka listener, for bench/run.sh: `produce`
sends RECORDS records of SIZE bytes as fast as it can (acks=all, no compression, as the
Rust client's row) and `consume` reads the topic from the beginning by assign. Prints the
JSON summary shape of `rill bench`. Usage: kafka_client.py produce|consume BOOTSTRAP TOPIC RECORDS SIZE"""
import json
import sys
import time

import confluent_kafka as ck

mode, bootstrap, topic, records, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def summary(workload, count, nbytes, seconds, latencies_ms):
    latencies_ms.sort()
    pick = lambda q: latencies_ms[min(len(latencies_ms) - 1, int(q * len(latencies_ms)))] if latencies_ms else 0.0
    return {"workload": workload, "records": count, "bytes": nbytes, "seconds": seconds,
            "records_per_sec": count / seconds, "mb_per_sec": nbytes / seconds / 1e6,
            "latency_ms": {"p50": pick(0.5), "p99": pick(0.99), "p999": pick(0.999),
                           "max": latencies_ms[-1] if latencies_ms else 0.0}}


if mode == "produce":
    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                            "queue.buffering.max.messages": 100000})
    payload = b"x" * size
    latencies, failed = [], [0]

    def report(err, _msg, sent=None):
        if err is not None:
            failed[0] += 1

    started = time.time()
    for i in range(records):
        sent = time.time()
        while True:
            try:
                producer.produce(topic, payload,
                                 on_delivery=lambda e, m, s=sent: (latencies.append((time.time() - s) * 1000), report(e, m)))
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    seconds = time.time() - started
    out = summary("kafka produce (librdkafka)", records - failed[0], (records - failed[0]) * size, seconds, latencies)
    out["failed"] = failed[0]
else:
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                            "fetch.max.bytes": 52428800})
    partitions = consumer.list_topics(topic, timeout=20).topics[topic].partitions
    consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in partitions])
    count, nbytes, latencies = 0, 0, []
    started = time.time()
    while count < records and time.time() - started < 300:
        polled = time.time()
        batch = consumer.consume(10000, 1.0)
        if batch:
            latencies.append((time.time() - polled) * 1000)
        for m in batch:
            if not m.error():
                count += 1
                nbytes += len(m.value())
    out = summary("kafka consume (librdkafka)", count, nbytes, time.time() - started, latencies)
    consumer.close()
print(json.dumps(out))
