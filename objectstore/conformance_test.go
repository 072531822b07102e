package objectstore_test

import (
	"testing"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/objectstore/objectstoretest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func TestMemConformance(t *testing.T) {
	objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewMem() })
}

func newFile(t *testing.T) objectstore.Store {
	s, err := objectstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileConformance(t *testing.T) {
	objectstoretest.Run(t, newFile)
}

// The wrappers with nothing to inject are transparent.
func TestFaultyConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewFaulty(objectstore.NewMem(), 1) })
	})
	t.Run("file", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewFaulty(newFile(t), 1) })
	})
	// A backend without conditional puts: the suite checks ErrUnsupported.
	t.Run("no-conditional", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store {
			f := objectstore.NewFaulty(objectstore.NewMem(), 1)
			f.DisableConditional(true)
			return f
		})
	})
}

func TestInstrumentedConformance(t *testing.T) {
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() { _ = provider.Shutdown(t.Context()) })
	objectstoretest.Run(t, func(t *testing.T) objectstore.Store {
		return objectstore.InstrumentedWith(newFile(t), "test", provider)
	})
}
