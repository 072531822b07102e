#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) round trip against a running Strata broker (run by
e2e/python_test.go).

For each codec: a Producer with compression.type=<codec>, linger.ms and acks=all sends
value(tag, i) for i < count to the (pre-created) topic <prefix>-<codec> and records each
delivery report's partition and offset. A Consumer (group.id set because the library requires
one; enable.auto.commit=false; no subscribe, so no group membership) assign()s every partition
at explicit offsets: first 0, checking everything byte-exact; then the middle offset of each
partition, checking that the first record returned is the one delivered there. Exit 0 and a JSON
summary on success; exit 1 with the problems on stderr otherwise.
"""
import argparse
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition

from records import Checker, key, value


def consume(bootstrap, assignments, want, timeout, on_record, extra=None):
    """Assigns the given TopicPartitions and calls on_record(msg) until want records came."""
    conf = {
        "bootstrap.servers": bootstrap,
        "client.id": "e2e-confluent",
        "group.id": "e2e-confluent-assign",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 200,
        "check.crcs": True,
    }
    conf.update(extra or {})
    c = Consumer(conf)
    c.assign(assignments)
    got, errors = 0, []
    deadline = time.time() + timeout
    while got < want and time.time() < deadline:
        for m in c.consume(num_messages=1000, timeout=0.5):
            if m.error():
                errors.append("consume error: %s" % m.error())
                continue
            on_record(m)
            got += 1
    c.close()
    return got, errors[:20]


def roundtrip(bootstrap, topic, tag, codec, count, timeout):
    problems = []
    delivered = {}  # (partition, offset) -> i
    failures = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                failures.append("record %d: delivery failed: %s" % (i, err))
            else:
                delivered[(msg.partition(), msg.offset())] = i
        return cb

    p = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "e2e-confluent",
        "compression.type": codec,
        "linger.ms": 10,
        "acks": "all",
        "queue.buffering.max.messages": max(count, 100000),
    })
    for i in range(count):
        p.produce(topic, key=key(i), value=value(tag, i), on_delivery=on_delivery(i))
        p.poll(0)
    left = p.flush(timeout)
    if left:
        problems.append("%s: %d records still undelivered after flush" % (topic, left))
    problems += failures[:20]
    if len(delivered) != count:
        problems.append("%s: %d distinct delivery offsets for %d records" % (topic, len(delivered), count))

    per_part = {}
    for (part, off) in delivered:
        per_part[part] = per_part.get(part, 0) + 1

    # 1. Everything from offset 0.
    chk = Checker(topic, tag, count)
    mismatch = []

    def check(m):
        chk.add(m.partition(), m.offset(), m.key(), m.value())
        want = delivered.get((m.partition(), m.offset()))
        if want is None or m.value() != value(tag, want):
            mismatch.append("%s/%d offset %d: not the record delivered there (%s)"
                            % (topic, m.partition(), m.offset(), want))

    got, errs = consume(bootstrap, [TopicPartition(topic, part, 0) for part in sorted(per_part)],
                        count, timeout, check)
    problems += errs + chk.problems() + mismatch[:20]

    # 2. Explicit mid offsets: the first record per partition must be the one delivered there.
    # A per-partition fetch limit far below a batch's size: the broker still returns whole
    # batches (the first one always), and the client skips the records before the offset.
    starts = {part: n // 2 for part, n in per_part.items()}
    firsts = {}
    want_mid = sum(per_part[part] - starts[part] for part in per_part)

    def first(m):
        firsts.setdefault(m.partition(), m)

    got_mid, errs = consume(bootstrap, [TopicPartition(topic, part, off) for part, off in sorted(starts.items())],
                            want_mid, timeout, first, {"max.partition.fetch.bytes": 1024})
    problems += errs
    if got_mid != want_mid:
        problems.append("%s: %d records from the middle offsets, want %d" % (topic, got_mid, want_mid))
    for part, off in starts.items():
        m = firsts.get(part)
        if m is None:
            problems.append("%s/%d: nothing consumed from offset %d" % (topic, part, off))
        elif m.offset() != off or m.value() != value(tag, delivered[(part, off)]):
            problems.append("%s/%d: assign at offset %d returned offset %d first" % (topic, part, off, m.offset()))

    return {"topic": topic, "codec": codec, "delivered": len(delivered), "consumed": got,
            "consumed_from_middle": got_mid, "partitions": len(per_part)}, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic-prefix", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--codecs", default="none,gzip,snappy,lz4,zstd")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    results, problems = [], []
    for codec in a.codecs.split(","):
        res, probs = roundtrip(a.bootstrap, "%s-%s" % (a.topic_prefix, codec), "ck-" + codec, codec,
                               a.count, a.timeout)
        results.append(res)
        problems += probs
    print(json.dumps({"confluent_kafka": confluent_kafka.version()[0],
                      "librdkafka": confluent_kafka.libversion()[0], "results": results}))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
