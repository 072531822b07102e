package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestZZDebugPipe(t *testing.T) {
	b := startStrata(t)
	for _, vs := range [][]int16{{0, 0}, {3, 3}, {0, 1, 2, 3}, {1, 0}} {
		rc := dialRaw(t, b.Addr)
		var buf []byte
		var corrs []int32
		for _, v := range vs {
			r := kmsg.NewPtrApiVersionsRequest()
			r.SetVersion(v)
			r.ClientSoftwareName, r.ClientSoftwareVersion = "e2e", "1"
			rc.corr++
			buf = rc.fmtr.AppendRequest(buf, r, rc.corr)
			corrs = append(corrs, rc.corr)
		}
		rc.writeRaw(buf)
		for i := range vs {
			raw, err := rc.readFrame(3 * time.Second)
			t.Logf("versions %v: response %d: %d bytes err %v", vs, i, len(raw), err)
			if err != nil {
				break
			}
		}
	}
}
