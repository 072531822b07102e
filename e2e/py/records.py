"""Deterministic test records shared by the e2e Python clients.

value(tag, i) must stay byte-identical to recValue in e2e/data_test.go and to value() in
e2e/js/roundtrip.js: the Go test checks what these scripts produce.
"""


def value(tag, i):
    head = ("%s:%07d:" % (tag, i)).encode()
    return head + bytes((i * 7 + j) % 256 for j in range((i * 37) % 1000))


def key(i):
    return b"k%d" % i


def index_of(tag, v):
    """Returns i if v == value(tag, i), else raises ValueError."""
    prefix = (tag + ":").encode()
    if not v.startswith(prefix) or len(v) < len(prefix) + 8:
        raise ValueError("value %r does not start with %r" % (v[:40], prefix))
    i = int(v[len(prefix):len(prefix) + 7])
    if v != value(tag, i):
        raise ValueError("value for record %d differs (len %d, want %d)" % (i, len(v), len(value(tag, i))))
    return i


class Checker:
    """Collects consumed records of one topic and checks them: each of value(tag, 0..n-1) exactly
    once, key(i) as key, offsets dense from the first one seen, producer order per partition."""

    def __init__(self, topic, tag, n):
        self.topic, self.tag, self.n = topic, tag, n
        self.seen = set()
        self.last = {}  # partition -> (last offset, last i)
        self.errors = []

    def add(self, partition, offset, k, v):
        where = "%s/%d offset %d" % (self.topic, partition, offset)
        try:
            i = index_of(self.tag, v)
        except ValueError as e:
            self.errors.append("%s: %s" % (where, e))
            return
        if k != key(i):
            self.errors.append("%s: key %r, want %r" % (where, k, key(i)))
        if i in self.seen:
            self.errors.append("%s: record %d seen twice" % (where, i))
        self.seen.add(i)
        if partition in self.last:
            lo, li = self.last[partition]
            if offset != lo + 1:
                self.errors.append("%s: follows offset %d (offsets must be dense)" % (where, lo))
            if i <= li:
                self.errors.append("%s: record %d after record %d (order broken)" % (where, i, li))
        self.last[partition] = (offset, i)

    def done(self):
        return len(self.seen) >= self.n

    def problems(self):
        out = list(self.errors[:20])
        if len(self.seen) != self.n:
            missing = [i for i in range(self.n) if i not in self.seen][:10]
            out.append("%s: %d distinct records consumed, want %d (first missing %s)"
                       % (self.topic, len(self.seen), self.n, missing))
        return out
