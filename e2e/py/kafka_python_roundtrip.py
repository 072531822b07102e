#!/usr/bin/python3
"""kafka-python round trip against a running Strata broker (run by e2e/python_test.go).

For each codec: a batching KafkaProducer (linger_ms, batch_size, acks=all) sends value(tag, i)
for i < count to the (pre-created) topic <prefix>-<codec>; then a KafkaConsumer without a group
(group_id=None) assign()s every partition, seeks to the beginning and reads until all records
are back. Checks byte-exact values, keys, dense offsets, per-partition order and that every
record sits at the offset the producer was told. Exit 0 and a JSON summary on success; exit 1
with the problems on stderr otherwise.
"""
import argparse
import json
import sys
import time

import kafka
import kafka.codec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from records import Checker, key, value

AVAILABLE = {
    "none": lambda: True,
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}


def roundtrip(bootstrap, topic, tag, codec, count, timeout):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="e2e-kafka-python",
        acks="all",
        linger_ms=20,
        batch_size=64 * 1024,
        compression_type=None if codec == "none" else codec,
        retries=3,
    )
    futures = [producer.send(topic, key=key(i), value=value(tag, i)) for i in range(count)]
    producer.flush(timeout=timeout)
    acked = {}  # (partition, offset) -> i
    for i, f in enumerate(futures):
        md = f.get(timeout=timeout)
        if (md.partition, md.offset) in acked:
            raise SystemExit("%s: offset %d/%d acknowledged twice" % (topic, md.partition, md.offset))
        acked[(md.partition, md.offset)] = i
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="e2e-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        check_crcs=True,
        # Far below a batch's size: the broker must still return the first batch whole.
        max_partition_fetch_bytes=2048,
    )
    parts = sorted(consumer.partitions_for_topic(topic) or [])
    if not parts:
        raise SystemExit("%s: no partitions in metadata" % topic)
    tps = [TopicPartition(topic, p) for p in parts]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    chk = Checker(topic, tag, count)
    problems = []
    deadline = time.time() + timeout
    while not chk.done() and time.time() < deadline:
        for tp, recs in consumer.poll(timeout_ms=500).items():
            for r in recs:
                chk.add(tp.partition, r.offset, r.key, r.value)
                want = acked.get((tp.partition, r.offset))
                if want is None or r.value != value(tag, want):
                    problems.append("%s/%d offset %d: not the record the producer was acknowledged for (%s)"
                                    % (topic, tp.partition, r.offset, want))
    consumer.close()
    problems = chk.problems() + problems[:20]
    return {"topic": topic, "codec": codec, "produced": len(acked), "consumed": len(chk.seen),
            "partitions": len(parts)}, problems


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
        if not AVAILABLE[codec]():
            problems.append("kafka-python %s cannot use codec %s: its Python module is missing "
                            "(run scripts/install-test-deps.sh)" % (kafka.__version__, codec))
            continue
        res, probs = roundtrip(a.bootstrap, "%s-%s" % (a.topic_prefix, codec), "kp-" + codec, codec,
                               a.count, a.timeout)
        results.append(res)
        problems += probs
    print(json.dumps({"kafka_python": kafka.__version__, "results": results}))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
