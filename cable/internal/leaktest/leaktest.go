// Package leaktest is the goroutine-leak check of cable's test packages
// (coder/websocket's main_test.go idea): a run whose tests passed fails if
// a goroutine running gocable code is still alive a few seconds after the
// last test, so every server a test starts must be shut down and Shutdown
// must leave nothing behind.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests, then the leak check when they passed, and exits
// with the run's status. Call it from TestMain; after runs once the
// tests and before the check (nil for none), to stop what TestMain itself
// started.
func Main(m *testing.M, after func()) {
	code := m.Run()
	if after != nil {
		after()
	}
	if code == 0 {
		if leaked := Wait(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait waits up to d for every goroutine running gocable code, other than
// the test binary's main and this check, to end. It returns their stacks
// if some are left, else "".
func Wait(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		var ours []string
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "gocable/gocable") && !strings.Contains(g, "TestMain") && !strings.Contains(g, "leaktest.") {
				ours = append(ours, g)
			}
		}
		if len(ours) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
