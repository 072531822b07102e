package replica

import (
	"errors"
	"log/slog"
	"time"

	"github.com/stratalog/strata/segments"
)

var errStub = errors.New("replica: not implemented")

// Options configures Open.
type Options struct {
	Dir       string
	Topic     string
	Partition int32
	Log       segments.Config
	Committer *Committer
	Logger    *slog.Logger
}

// Partition is one hosted topic-partition (stub).
type Partition struct {
	o Options
}

// AppendResult is the outcome of Append.
type AppendResult struct {
	BaseOffset     segments.Offset
	LogAppendTime  int64
	LogStartOffset segments.Offset
	Duplicate      bool
	Durable        <-chan error
}

func Open(o Options) (*Partition, error)                         { return &Partition{o: o}, nil }
func (p *Partition) Topic() string                               { return p.o.Topic }
func (p *Partition) Index() int32                                { return p.o.Partition }
func (p *Partition) Append(payload []byte) (AppendResult, error) { return AppendResult{}, errStub }
func (p *Partition) HighWatermark() segments.Offset              { return 0 }
func (p *Partition) LogStartOffset() segments.Offset             { return 0 }
func (p *Partition) LogEndOffset() segments.Offset               { return 0 }
func (p *Partition) LeaderEpoch() segments.LeaderEpoch           { return 0 }
func (p *Partition) Read(from segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, error) {
	return segments.ReadResult{}, errStub
}
func (p *Partition) Changed() <-chan struct{} { return make(chan struct{}) }
func (p *Partition) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	return 0, 0, false, errStub
}
func (p *Partition) MaxTimestamp() (int64, segments.Offset) { return -1, -1 }
func (p *Partition) EndOffsetForEpoch(e segments.LeaderEpoch) (segments.LeaderEpoch, segments.Offset) {
	return -1, -1
}
func (p *Partition) DeleteRecordsBefore(o segments.Offset) (segments.Offset, error) { return 0, errStub }
func (p *Partition) ApplyRetention(now time.Time) error                          { return nil }
func (p *Partition) SetLogConfig(c segments.Config)                              {}
func (p *Partition) Close() error                                                { return nil }
func (p *Partition) Delete() error                                               { return nil }

// Committer is the group-commit fsync driver (stub).
type Committer struct{}

func NewCommitter(logger *slog.Logger) *Committer { return &Committer{} }
func (c *Committer) Close()                      {}
