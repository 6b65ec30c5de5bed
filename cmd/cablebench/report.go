package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// report is a run's output: the JSON file's top level, and the table's
// header.
type report struct {
	Mode      string            `json:"mode"`
	URL       string            `json:"url"`
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"elapsed_s"`
	LoadStart LoadAvg           `json:"loadavg_start"`
	LoadEnd   LoadAvg           `json:"loadavg_end"`
	NoFile    uint64            `json:"rlimit_nofile"`
	Options   map[string]string `json:"options"`
	Result    result            `json:"result"`
}

// writeTable prints the report as a two-column table.
func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cablebench %s\t%s\n", r.Mode, r.URL)
	fmt.Fprintf(tw, "elapsed\t%.1fs\n", r.Seconds)
	fmt.Fprintf(tw, "load average\t%v (start), %v (end)\n", r.LoadStart, r.LoadEnd)
	for _, row := range r.Result.rows() {
		if row.value == "" {
			fmt.Fprintf(tw, "%s\t\n", row.name)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", row.name, row.value)
	}
	tw.Flush()
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cablebench: json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cablebench: %w", err)
	}
	return nil
}

// summaryRow formats a latency summary.
func summaryRow(name string, s Summary) row {
	if s.Count == 0 {
		return row{name, "-"}
	}
	return row{name, fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)",
		fmtMS(s.P50), fmtMS(s.P95), fmtMS(s.P99), fmtMS(s.Max), s.Count)}
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// fmtBytes formats a byte count with a binary unit.
func fmtBytes(n float64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	var s string
	switch {
	case n >= 1<<30:
		s = fmt.Sprintf("%.2f GiB", n/(1<<30))
	case n >= 1<<20:
		s = fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		s = fmt.Sprintf("%.1f KiB", n/(1<<10))
	default:
		s = fmt.Sprintf("%.0f B", n)
	}
	if neg {
		return "-" + s
	}
	return s
}

// errorRows lists the most frequent errors.
func errorRows(errs []ErrorCount) []row {
	var rows []row
	for _, e := range errs {
		rows = append(rows, row{fmt.Sprintf("error ×%d", e.Count), e.Error})
	}
	return rows
}

// ServerStats are the server's resources sampled from /proc around a
// measurement.
type ServerStats struct {
	PID            int     `json:"pid"`
	RSSBefore      int64   `json:"rss_before_bytes,omitempty"`
	RSSAfter       int64   `json:"rss_after_bytes,omitempty"`
	RSSMin         int64   `json:"rss_min_bytes,omitempty"`
	RSSPeak        int64   `json:"rss_peak_bytes,omitempty"`
	ThreadsBefore  int64   `json:"threads_before,omitempty"`
	ThreadsAfter   int64   `json:"threads_after,omitempty"`
	CPUSeconds     float64 `json:"cpu_s,omitempty"`
	IdleCPUPercent float64 `json:"idle_cpu_percent,omitempty"`
}
