"""confluent-kafka exactly-once copy (consume-transform-produce): reads SRC in group
GROUP (read_committed), writes each record's value to DST and commits the input offsets
in the same transaction, until the group's committed offsets reach the end of SRC
(written in full before; TOTAL records). An abortable error aborts
and rewinds to the committed offsets; a fenced or fatal producer is replaced. Prints
{"copied": n} after each commit and a last line {"done": n, "aborts": a, "restarts": r}.
Usage: ck_copy.py BOOTSTRAP SRC DST GROUP TXN_ID TOTAL"""
import json
import sys
import threading
import time

import confluent_kafka as ck

bootstrap, src, dst, group, txn_id, total = sys.argv[1:7]
total = int(total)


def step(what, **more):
    """A diagnostic line on stderr: what the copier does next."""
    print(json.dumps({"t": round(time.time(), 3), "step": what, **more}), file=sys.stderr,
          flush=True)


class Hung(Exception):
    pass


def bounded(call, *args, limit=45):
    """Runs a client call in a thread and gives up on it after LIMIT seconds:
    librdkafka's send_offsets_to_transaction can hang past its own timeout when the group
    coordinator goes away mid-call (librdkafka issues 5456 and 5511). A hung producer is
    replaced; the new instance fences it and aborts its transaction."""
    result = {}

    def run():
        try:
            result["value"] = call(*args)
        except Exception as e:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        raise Hung(call.__name__)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def new_producer():
    step("init_transactions")
    p = ck.Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": 20000,
        "linger.ms": 5,
    })
    p.init_transactions(120)
    return p


consumer = ck.Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "isolation.level": "read_committed",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
consumer.subscribe([src])
producer = new_producer()
copied, aborts, restarts = 0, 0, 0


def rewind():
    step("rewind")
    assignment = consumer.assignment()
    if not assignment:
        return
    for tp in consumer.committed(assignment, 30):
        if tp.offset < 0:
            tp.offset = ck.OFFSET_BEGINNING
        consumer.seek(tp)


def caught_up():
    """Whether the committed offsets of every input partition reach its end."""
    partitions = consumer.list_topics(src, timeout=10).topics[src].partitions
    tps = [ck.TopicPartition(src, p) for p in partitions]
    committed = consumer.committed(tps, 30)
    ends = sum(consumer.get_watermark_offsets(tp, 10)[1] for tp in tps)
    done = sum(max(tp.offset, 0) for tp in committed)
    print(json.dumps({"committed": done, "end": ends}), file=sys.stderr, flush=True)
    return done >= ends == total


deadline = time.time() + 300
finished = False
while time.time() < deadline:
    msgs = [m for m in consumer.consume(50, 1.0) if not m.error()]
    if not msgs:
        try:
            if caught_up():
                finished = True
                break
        except ck.KafkaException as e:
            print(json.dumps({"caught_up": str(e)}), file=sys.stderr, flush=True)
        continue
    try:
        step("begin", records=len(msgs))
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, key=m.key(), value=m.value())
        positions = consumer.position(consumer.assignment())
        step("send_offsets")
        bounded(producer.send_offsets_to_transaction, positions,
                consumer.consumer_group_metadata(), 30)
        step("commit")
        bounded(producer.commit_transaction, 30)
        copied += len(msgs)
        print(json.dumps({"copied": copied}), flush=True)
        # Many small transactions, so the test's kills land in the middle of some.
        time.sleep(0.05)
    except Hung as e:
        step("hung", call=str(e))
        restarts += 1
        producer = new_producer()
        rewind()
        continue
    except ck.KafkaException as e:
        err = e.args[0]
        step("error", error=str(err), abortable=err.txn_requires_abort(), fatal=err.fatal())
        if err.txn_requires_abort():
            aborts += 1
            try:
                producer.abort_transaction(60)
            except ck.KafkaException:
                producer = new_producer()
                restarts += 1
        elif err.fatal():
            restarts += 1
            producer = new_producer()
        else:
            # Retriable commit (a timeout): the transaction's outcome is unknown to us; a
            # new producer instance aborts it if it is still open.
            restarts += 1
            producer = new_producer()
        rewind()
print(json.dumps({"done": copied, "finished": finished, "aborts": aborts,
                  "restarts": restarts}), flush=True)
