package runner

import (
	"testing"

	"github.com/gocable/gocable/cable/internal/leaktest"
)

// TestMain fails the run if goroutines outlive the tests: every server a
// test runs, and its health canary, must have ended with it.
func TestMain(m *testing.M) { leaktest.Main(m, nil) }
