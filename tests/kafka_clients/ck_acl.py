"""confluent-kafka as USER/PASSWORD (SCRAM-SHA-512; SASL_SSL trusting CA, or
SASL_PLAINTEXT when CA is "") doing one ACTION. With PASSWORD "" it is SSL without SASL,
USER being the path of a client certificate without its ".pem" (key: USER-key.pem).
  produce TOPIC        one record; prints {"error": null} or {"error": "CODE"}
  commit TOPIC GROUP   joins GROUP, reads TOPIC's records, commits; {"error": ...}
  list                 {"topics": [names the principal sees]}
  groups GROUP...      {"groups": [ids listed], "describe": {GROUP: null or "CODE"}}
Usage: ck_acl.py BOOTSTRAP USER PASSWORD CA ACTION [TOPIC [GROUP]]"""
import json
import sys

import confluent_kafka as ck
import confluent_kafka.admin

bootstrap, user, password, ca, action = sys.argv[1:6]
args = sys.argv[6:]
conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}
if ca:
    conf.update({"security.protocol": "SASL_SSL", "ssl.ca.location": ca})
if not password:
    for key in ("sasl.mechanism", "sasl.username", "sasl.password"):
        del conf[key]
    conf.update({"security.protocol": "SSL", "ssl.certificate.location": user + ".pem",
                 "ssl.key.location": user + "-key.pem"})


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
elif action == "groups":
    admin = ck.admin.AdminClient(conf)
    listed = admin.list_consumer_groups(request_timeout=10).result()
    described = {}
    for group, future in admin.describe_consumer_groups(args, request_timeout=10).items():
        try:
            future.result()
            described[group] = None
        except ck.KafkaException as e:
            described[group] = e.args[0].name()
    print(json.dumps({"groups": sorted(g.group_id for g in listed.valid),
                      "describe": described}))
