package broker

import (
	"testing"
	"time"

	"github.com/stratalog/strata/wire"
)

// TestAPITable: the wire server accepts the broker's table: no key twice,
// every range within what kmsg decodes, and a wire/shape schema for every
// API served, so that no body reaches kmsg unbounded.
func TestAPITable(t *testing.T) {
	if _, err := wire.NewServer(wire.Config{Name: "broker"}, (&Broker{}).apiTable()); err != nil {
		t.Fatal(err)
	}
}

// apiFor returns b's table entry for key.
func apiFor(t *testing.T, b *Broker, key int16) wire.API {
	t.Helper()
	for _, a := range b.apiTable() {
		if a.Key == key {
			return a
		}
	}
	t.Fatalf("no handler for key %d", key)
	return wire.API{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 20000 {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
