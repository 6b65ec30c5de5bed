package solidcable_test

import (
	"testing"

	"github.com/gocable/gocable/cable/internal/leaktest"
)

// TestMain fails the run if goroutines outlive the tests: every PubSub a
// test makes must be closed, and Close must leave nothing behind.
func TestMain(m *testing.M) {
	leaktest.Main(m, nil)
}
