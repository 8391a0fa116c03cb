"""confluent-kafka as USER/PASSWORD (SASL_PLAINTEXT, SCRAM-SHA-512) doing one ACTION:
  produce TOPIC        one record; prints {"error": null} or {"error": "CODE"}
  commit TOPIC GROUP   joins GROUP, reads TOPIC's records, commits; {"error": ...}
  list                 {"topics": [names the principal sees]}
Usage: ck_acl.py BOOTSTRAP USER PASSWORD ACTION [TOPIC [GROUP]]"""
import json
import sys

import confluent_kafka as ck
import confluent_kafka.admin

bootstrap, user, password, action = sys.argv[1:5]
args = sys.argv[5:]
conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}


def name(err):
    return None if err is None else err.name()


if action == "produce":
    result = {}
    producer = ck.Producer(dict(conf, **{"message.timeout.ms": 10000}))
    producer.produce(args[0], value=b"x",
                     on_delivery=lambda err, msg: result.setdefault("error", name(err)))
    producer.flush(15)
    print(json.dumps({"error": result.get("error", "NOT_DELIVERED")}))
elif action == "commit":
    topic, group = args
    errors = []
    consumer = ck.Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest",
                                         "enable.auto.commit": False,
                                         "error_cb": lambda e: errors.append(e.name())}))
    consumer.subscribe([topic])
    message = None
    for _ in range(40):
        message = consumer.poll(0.25)
        if message is not None or errors:
            break
    if message is not None and message.error():
        errors.append(message.error().name())
    error = errors[0] if errors else None
    if error is None:
        try:
            consumer.commit(asynchronous=False)
        except ck.KafkaException as e:
            error = e.args[0].name()
    consumer.close()
    print(json.dumps({"error": error if message is not None or error else "NOTHING_READ"}))
elif action == "list":
    metadata = ck.admin.AdminClient(conf).list_topics(timeout=10)
    print(json.dumps({"topics": sorted(metadata.topics)}))
