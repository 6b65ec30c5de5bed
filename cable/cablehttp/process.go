package cablehttp

import (
	"bytes"
	"os"
	"strconv"
)

// processMetrics returns the process gauges Metrics serves after the
// server's own: gocable_process_resident_memory_bytes (VmRSS of
// /proc/self/status) and gocable_process_open_fds (entries of
// /proc/self/fd), the figures a soak or leak hunt watches beside
// gocable_goroutines. Where /proc cannot be read (not Linux) a gauge is
// left out rather than reported as 0.
func processMetrics() []metric {
	var ms []metric
	if rss, ok := selfRSS(); ok {
		ms = append(ms, metric{"gocable_process_resident_memory_bytes", "gauge", "Resident memory of the process in bytes.", float64(rss), ""})
	}
	if fds, ok := selfOpenFDs(); ok {
		ms = append(ms, metric{"gocable_process_open_fds", "gauge", "Open file descriptors of the process.", float64(fds), ""})
	}
	return ms
}

// selfRSS returns VmRSS from /proc/self/status, in bytes.
func selfRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		return kb * 1024, err == nil
	}
	return 0, false
}

// selfOpenFDs counts the entries of /proc/self/fd, less the one the count
// itself holds open.
func selfOpenFDs() (int, bool) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(1024)
		n += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	return max(n-1, 0), true
}
