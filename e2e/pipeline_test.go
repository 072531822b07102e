package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPipelinedRequests: one connection writes 200 requests back to back without reading — a
// long-polling Fetch first, then ApiVersions, Metadata, ListOffsets and Produce requests of
// several versions — and the broker must answer every one, strictly in request order, each
// response decoding as its request's type.
func TestPipelinedRequests(t *testing.T) {
	b := startStrata(t)
	const topic = "pipelined"
	b.createTopic(t, topic, 1, nil)

	rc := dialRaw(t, b.Addr())
	type sent struct {
		corr int32
		req  kmsg.Request
	}
	var reqs []kmsg.Request

	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(11)
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 500
	fetch.MinBytes = 1 << 20 // more than will ever arrive: the broker waits the full 500 ms
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 0
	fp.PartitionMaxBytes = 1 << 20
	fp.CurrentLeaderEpoch = -1
	fp.LogStartOffset = -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	reqs = append(reqs, fetch)

	produced := 0
	for i := 0; len(reqs) < 200; i++ {
		switch i % 4 {
		case 0:
			r := kmsg.NewPtrApiVersionsRequest()
			r.SetVersion(int16(i/4) % 4)
			r.ClientSoftwareName, r.ClientSoftwareVersion = "e2e", "1"
			reqs = append(reqs, r)
		case 1:
			r := kmsg.NewPtrMetadataRequest()
			r.SetVersion([]int16{1, 5, 9}[(i/4)%3])
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(topic)
			r.Topics = append(r.Topics, mt)
			reqs = append(reqs, r)
		case 2:
			r := kmsg.NewPtrListOffsetsRequest()
			r.SetVersion([]int16{1, 4, 5}[(i/4)%3])
			r.ReplicaID = -1
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = topic
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = -1 // latest
			lp.CurrentLeaderEpoch = -1
			lt.Partitions = append(lt.Partitions, lp)
			r.Topics = append(r.Topics, lt)
			reqs = append(reqs, r)
		case 3:
			r := kmsg.NewPtrProduceRequest()
			r.SetVersion([]int16{3, 7, 9}[(i/4)%3])
			r.Acks = 1
			r.TimeoutMillis = 30000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = topic
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Records = encodeBatch([]rawRecord{{Key: recKey(produced), Value: recValue("pipe", produced), Timestamp: time.Now().UnixMilli()}}, batchOpts{})
			produced++
			pt.Partitions = append(pt.Partitions, pp)
			r.Topics = append(r.Topics, pt)
			reqs = append(reqs, r)
		}
	}

	var buf []byte
	var order []sent
	for _, r := range reqs {
		rc.corr++
		// AppendRequest sizes everything in dst as one frame: encode each request on its own.
		buf = append(buf, rc.fmtr.AppendRequest(nil, r, rc.corr)...)
		order = append(order, sent{rc.corr, r})
	}
	if err := rc.writeRaw(buf); err != nil {
		t.Fatalf("writing %d pipelined requests: %v", len(reqs), err)
	}
	start := time.Now()
	last := start
	for i, s := range order {
		raw, err := rc.readFrame(time.Minute)
		if d := time.Since(last); d > 100*time.Millisecond {
			t.Logf("response %d (%s v%d) came %v after the previous one", i+1, kmsg.NameForKey(s.req.Key()), s.req.GetVersion(), d)
		}
		last = time.Now()
		if err != nil {
			t.Fatalf("response %d of %d: %v", i+1, len(order), err)
		}
		resp := s.req.ResponseKind()
		if err := decodeResponse(raw, s.corr, s.req.Key(), s.req.GetVersion(), resp); err != nil {
			t.Fatalf("response %d of %d (%s v%d, correlation id %d): %v", i+1, len(order),
				kmsg.NameForKey(s.req.Key()), s.req.GetVersion(), s.corr, err)
		}
		switch r := resp.(type) {
		case *kmsg.ProduceResponse:
			if c := r.Topics[0].Partitions[0].ErrorCode; c != 0 {
				t.Errorf("pipelined produce v%d: error code %d", r.Version, c)
			}
		case *kmsg.FetchResponse:
			if r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Errorf("pipelined fetch: %+v", r)
			}
		case *kmsg.ApiVersionsResponse:
			if r.ErrorCode != 0 {
				t.Errorf("pipelined ApiVersions v%d: error code %d", r.Version, r.ErrorCode)
			}
		case *kmsg.ListOffsetsResponse:
			if c := r.Topics[0].Partitions[0].ErrorCode; c != 0 {
				t.Errorf("pipelined ListOffsets v%d: error code %d", r.Version, c)
			}
		case *kmsg.MetadataResponse:
			if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
				t.Errorf("pipelined Metadata v%d: %+v", r.Version, r.Topics)
			}
		}
	}
	checkRecValues(t, topic, "pipe", produced, b.consumeAll(t, topic))
}
