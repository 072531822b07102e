package broker

// Produce, API key 0, versions 3–11 (record batches, magic v2, only).
//
// Per topic and partition, in request order:
//   - unknown topic or partition index → UNKNOWN_TOPIC_OR_PARTITION;
//   - __consumer_offsets (written only by the group coordinator) →
//     INVALID_TOPIC_EXCEPTION, as Kafka answers clients;
//   - acks not -1, 0 or 1 → INVALID_REQUIRED_ACKS (every known partition);
//   - the records must hold exactly one batch (Kafka's rule for v3+:
//     none or several → INVALID_RECORD); zstd needs v7+
//     (UNSUPPORTED_COMPRESSION_TYPE);
//   - otherwise Partition.Append validates (CRC, lengths, record count,
//     max.message.bytes, producer sequence) and writes; its errors map
//     through errorCode, with the error text in ErrorMessage on v8+.
//     Corrupt or invalid batches are also logged and counted as bad input.
//
// Transactions are not supported yet (they come with the transaction
// coordinator). A request with a transactional id, or whose batches are
// transactional, gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every
// partition — what Kafka answers when the producer may not use its
// transactional id — so clients fail at once with a non-retriable error
// instead of retrying forever.
//
// Replies: acks=0 gets no response (after the appends, never waiting for
// fsync); as in Kafka, if any partition failed, the connection is closed
// instead so that the client refreshes its metadata. acks=1 and acks=-1
// (single node: the same) are answered once every appended batch is
// fsynced (group commit): the handler appends in request order and returns
// a deferred reply that a goroutine completes when every partition's
// Durable has fired. An fsync error turns that partition's result into
// KAFKA_STORAGE_ERROR (a partition closed meanwhile: NOT_LEADER_OR_FOLLOWER,
// which clients retry). TimeoutMillis is not applied: a durable write is
// never reported as timed out.
//
// Successful partitions carry BaseOffset (for a duplicate batch of an
// idempotent producer, the original one), LogAppendTime (-1 for
// CreateTime topics) and LogStartOffset (v5+); failed ones carry -1 in all
// three, like Kafka.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/wire"
)

// Byte positions in a magic-v2 record batch header.
const (
	batchLengthPos     = 8  // int32 after the int64 base offset
	batchAttributesPos = 21 // int16 after baseOffset(8) length(4) leaderEpoch(4) magic(1) crc(4)
	batchLogOverhead   = 12 // baseOffset + length: bytes not counted by the length field

	attrCompressionMask = 0x07
	attrTransactional   = 0x10
	compressionZstd     = 4
)

func (b *Broker) handleProduce(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.ProduceRequest)
	if !ok {
		return nil, fmt.Errorf("produce: unexpected body %T", r.Body)
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	version := req.Version

	transactional := req.TransactionID != nil
	for ti := range req.Topics {
		for pi := range req.Topics[ti].Partitions {
			if isTransactionalBatch(req.Topics[ti].Partitions[pi].Records) {
				transactional = true
			}
		}
	}
	validAcks := req.Acks == -1 || req.Acks == 0 || req.Acks == 1

	type pending struct {
		p       *kmsg.ProduceResponseTopicPartition
		durable <-chan error
		topic   string
	}
	var waits []pending
	var jobs []appendJob
	failed := false
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t := b.topics.get(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			fail := func(code int16, msg string) {
				sp.ErrorCode = code
				if version >= 8 && msg != "" {
					sp.ErrorMessage = wire.ErrorMessage(msg)
				}
				failed = true
			}
			if transactional {
				fail(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not supported by this broker yet")
				continue
			}
			p, code := t.led(rp.Partition)
			if code != 0 {
				fail(code, "")
				continue
			}
			if rt.Topic == offsetsTopic {
				// Kafka: "Cannot append to internal topic" (only the
				// coordinator writes it, through Partition.Append).
				fail(kerr.InvalidTopicException.Code, "cannot append to internal topic "+offsetsTopic)
				continue
			}
			if !validAcks {
				fail(kerr.InvalidRequiredAcks.Code, "")
				continue
			}
			if code, msg := checkProduceRecords(version, rp.Records); code != 0 {
				badBatch(r, rt.Topic, rp.Partition, code, msg)
				fail(code, msg)
				continue
			}
			jobs = append(jobs, appendJob{p: p, records: rp.Records, topic: rt.Topic, resp: sp, fail: fail})
		}
	}

	runAppends(jobs)
	for i := range jobs {
		j := &jobs[i]
		if j.err != nil {
			code := errorCode(j.err)
			switch code {
			case kerr.UnknownServerError.Code:
				b.log.Error("produce: append failed", "topic", j.topic, "partition", j.resp.Partition, "err", j.err)
			case kerr.CorruptMessage.Code, kerr.InvalidRecord.Code:
				badBatch(r, j.topic, j.resp.Partition, code, j.err.Error())
			}
			j.fail(code, j.err.Error())
			continue
		}
		sp := j.resp
		sp.BaseOffset = int64(j.res.BaseOffset)
		sp.LogAppendTime = j.res.LogAppendTime
		sp.LogStartOffset = int64(j.res.LogStartOffset)
		if req.Acks != 0 && j.res.Durable != nil {
			waits = append(waits, pending{p: sp, durable: j.res.Durable, topic: j.topic})
		}
	}

	if req.Acks == 0 {
		if failed {
			// Kafka closes the connection: with no response, that is the
			// only way to make the client refresh its metadata.
			return nil, errors.New("produce with acks=0 failed for at least one partition; closing the connection as Kafka does")
		}
		return &wire.Reply{None: true}, nil
	}
	if len(waits) == 0 {
		return wire.Completed(resp), nil
	}

	done := make(chan struct{})
	rep := &wire.Reply{Done: done}
	go func() {
		// Every Durable fires exactly once (after the fsync, or with its
		// error), so this wait is bounded by the committer.
		for _, w := range waits {
			if err := <-w.durable; err != nil {
				b.log.Error("produce: batch not durable", "topic", w.topic, "partition", w.p.Partition, "err", err)
				code := errorCode(err)
				if code == kerr.UnknownServerError.Code {
					code = kerr.KafkaStorageError.Code // an fsync error
				}
				w.p.ErrorCode = code
				w.p.BaseOffset, w.p.LogAppendTime, w.p.LogStartOffset = -1, -1, -1
				if version >= 8 {
					w.p.ErrorMessage = wire.ErrorMessage("fsync failed: " + err.Error())
				}
			}
		}
		rep.Msg = resp
		close(done)
	}()
	return rep, nil
}

// appendJob is one partition's append within a produce request.
type appendJob struct {
	p       *replica.Partition
	records []byte
	topic   string
	resp    *kmsg.ProduceResponseTopicPartition
	fail    func(code int16, msg string)
	res     replica.AppendResult // set by runAppends
	err     error                // set by runAppends
}

// parallelAppendMinBytes is the request payload above which a multi-
// partition produce appends its partitions concurrently. Validation (CRC,
// record walk) and the pwrite copy cost ~1–3 ms per MiB of CPU, and the
// connection handles one request at a time, so one big request on one core
// would cap a producer's throughput; below this size the goroutines cost
// more than they save.
const parallelAppendMinBytes = 256 << 10

// runAppends appends every job, concurrently when there are several
// partitions and enough bytes. Each partition's appends stay in request
// order: this returns only when all are done, before the connection's next
// request is handled, and a request naming one partition twice is
// appended sequentially.
func runAppends(jobs []appendJob) {
	if !appendConcurrently(jobs) {
		for i := range jobs {
			jobs[i].res, jobs[i].err = jobs[i].p.Append(jobs[i].records)
		}
		return
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
				jobs[i].res, jobs[i].err = jobs[i].p.Append(jobs[i].records)
			}
		}()
	}
	wg.Wait()
}

// appendConcurrently reports whether jobs are worth appending in parallel:
// several partitions, enough bytes, and no partition named twice (whose
// batches must keep request order). Small requests, the common case at low
// rates, return before the duplicate check allocates anything.
func appendConcurrently(jobs []appendJob) bool {
	if len(jobs) < 2 {
		return false
	}
	total := 0
	for i := range jobs {
		total += len(jobs[i].records)
	}
	if total < parallelAppendMinBytes {
		return false
	}
	seen := make(map[*replica.Partition]bool, len(jobs))
	for i := range jobs {
		if seen[jobs[i].p] {
			return false
		}
		seen[jobs[i].p] = true
	}
	return true
}

// Bad-input kinds (wire.Conn.BadInput) for rejected batches.
const (
	badCorruptBatch = "corrupt_batch" // CRC or framing of a produced batch is wrong
	badInvalidBatch = "invalid_batch" // a batch that is well framed but breaks a rule
)

// badBatch counts and logs (rate-limited, through the connection) a
// produced batch refused as corrupt or invalid: hostile or broken input
// that the client gets an error code for. Without a connection (handler
// tests) there is nothing to report to.
func badBatch(r *wire.Request, topic string, partition int32, code int16, reason string) {
	if r.Conn == nil {
		return
	}
	kind := badInvalidBatch
	if code == kerr.CorruptMessage.Code {
		kind = badCorruptBatch
	}
	r.Conn.BadInput(kind, "produce: batch refused", "topic", topic, "partition", partition, "reason", reason)
}

// isTransactionalBatch reports whether the first batch of records has the
// transactional attribute (Kafka checks the first batch of each
// partition). Short input is not transactional; Append rejects it.
func isTransactionalBatch(records []byte) bool {
	if len(records) < batchAttributesPos+2 {
		return false
	}
	return binary.BigEndian.Uint16(records[batchAttributesPos:])&attrTransactional != 0
}

// checkProduceRecords applies Kafka's request-level record checks
// (ProduceRequest.validateRecords): exactly one batch, and no zstd before
// v7. Everything else about the batch is Partition.Append's job. It returns
// 0 if the records pass.
func checkProduceRecords(version int16, records []byte) (int16, string) {
	if len(records) == 0 {
		return kerr.InvalidRecord.Code, fmt.Sprintf("produce requests with version %d must have at least one record batch per partition", version)
	}
	if len(records) < batchAttributesPos+2 {
		return 0, "" // too short to be a batch: Append says why
	}
	length := int64(int32(binary.BigEndian.Uint32(records[batchLengthPos:])))
	if length >= 0 && batchLogOverhead+length < int64(len(records)) {
		return kerr.InvalidRecord.Code, fmt.Sprintf("produce requests with version %d may contain exactly one record batch per partition", version)
	}
	if version < 7 && binary.BigEndian.Uint16(records[batchAttributesPos:])&attrCompressionMask == compressionZstd {
		return kerr.UnsupportedCompressionType.Code, fmt.Sprintf("zstd compression needs produce version 7 or later, got %d", version)
	}
	return 0, ""
}
