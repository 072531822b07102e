#!/usr/bin/python3
"""Python group consumers against a running Strata broker (run by e2e/groups_test.go).

--client confluent (confluent-kafka-python, librdkafka) or kafka-python: <members> consumers
subscribe to <topic> in <group> (auto.offset.reset earliest, auto commit off), each polling
in its own thread until every value starting with <prefix> — <count> distinct ones — has been seen; each
consumer commits synchronously after each poll that returned records. A value without the
prefix had been committed before: exit 1. Then every consumer commits and closes (leaving the
group), and the script prints a JSON summary.
"""
import argparse
import json
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    for a in ("--bootstrap", "--topic", "--group", "--prefix", "--client"):
        ap.add_argument(a, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--members", type=int, default=2)
    args = ap.parse_args()

    if args.client == "confluent":
        from confluent_kafka import Consumer

        def make():
            c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                          "client.id": "e2e-confluent-group", "auto.offset.reset": "earliest",
                          "enable.auto.commit": False, "session.timeout.ms": 10000})
            c.subscribe([args.topic])
            return c

        def poll(c):
            msgs = c.consume(num_messages=500, timeout=0.2)
            out = []
            for m in msgs:
                if m.error():
                    raise SystemExit("consume error: %s" % m.error())
                out.append(m.value().decode())
            if msgs:
                c.commit(asynchronous=False)
            return out

        def close(c):
            c.close()
    else:
        from kafka import KafkaConsumer

        def make():
            return KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                                 client_id="e2e-kafka-python-group", auto_offset_reset="earliest",
                                 enable_auto_commit=False, session_timeout_ms=10000,
                                 heartbeat_interval_ms=1000)

        def poll(c):
            batches = c.poll(timeout_ms=200, max_records=500)
            out = [r.value.decode() for rs in batches.values() for r in rs]
            if out:
                c.commit()
            return out

        def close(c):
            c.close(autocommit=False)

    # One thread per member: a member rejoins only inside its own poll, so
    # members polled in turn by one thread would wait on each other.
    seen = {}
    lock = threading.Lock()
    done = threading.Event()
    errors = []

    def member():
        c = make()
        try:
            while not done.is_set():
                for v in poll(c):
                    with lock:
                        if not v.startswith(args.prefix):
                            errors.append("re-read committed record %s" % v)
                            done.set()
                        seen[v] = seen.get(v, 0) + 1
                        if len(seen) >= args.count:
                            done.set()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
            done.set()
        finally:
            close(c)

    threads = [threading.Thread(target=member) for _ in range(args.members)]
    for t in threads:
        t.start()
    if not done.wait(150):
        errors.append("timed out with %d of %d records" % (len(seen), args.count))
        done.set()
    for t in threads:
        t.join(60)
    if errors:
        raise SystemExit("; ".join(errors))
    print(json.dumps({"distinct": len(seen), "processed": sum(seen.values())}))

if __name__ == "__main__":
    sys.exit(main())
