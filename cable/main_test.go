package cable_test

import (
	"testing"

	"github.com/gocable/gocable/cable/internal/leaktest"
)

// TestMain fails the run if goroutines outlive the tests: every server a
// test starts must be shut down, and nothing may be left behind by
// Shutdown.
func TestMain(m *testing.M) { leaktest.Main(m, nil) }
