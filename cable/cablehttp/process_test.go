package cablehttp

import (
	"os"
	"testing"
)

// The process gauges follow the process: ten more open files are counted,
// and the resident size is that of a running Go program.
func TestProcessMetrics(t *testing.T) {
	before, ok := selfOpenFDs()
	if !ok {
		t.Skip("no /proc/self/fd")
	}
	for range 10 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	after, _ := selfOpenFDs()
	if after-before < 10 {
		t.Errorf("open fds %d, then %d after opening 10 files", before, after)
	}
	if rss, ok := selfRSS(); !ok || rss < 1<<20 || rss > 1<<40 {
		t.Errorf("selfRSS() = %d, %v", rss, ok)
	}
	names := map[string]bool{}
	for _, m := range processMetrics() {
		names[m.name] = m.kind == "gauge" && m.value > 0
	}
	if !names["gocable_process_resident_memory_bytes"] || !names["gocable_process_open_fds"] {
		t.Errorf("processMetrics() = %v", processMetrics())
	}
}
