package main

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// series returns 1ms, 2ms, ..., n ms.
func series(n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	return ds
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p50", series(1), 50, time.Millisecond},
		{"one p99", series(1), 99, time.Millisecond},
		{"two p50", series(2), 50, 1 * time.Millisecond},
		{"two p51", series(2), 51, 2 * time.Millisecond},
		{"ten p50", series(10), 50, 5 * time.Millisecond},
		{"ten p95", series(10), 95, 10 * time.Millisecond},
		{"ten p99", series(10), 99, 10 * time.Millisecond},
		{"hundred p50", series(100), 50, 50 * time.Millisecond},
		{"hundred p95", series(100), 95, 95 * time.Millisecond},
		{"hundred p99", series(100), 99, 99 * time.Millisecond},
		{"hundred p100", series(100), 100, 100 * time.Millisecond},
		{"hundred p0", series(100), 0, 1 * time.Millisecond},
		{"thousand p99", series(1000), 99, 990 * time.Millisecond},
		{"thousand p99.9", series(1000), 99.9, 999 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%d values, %v) = %v; want %v", tt.name, len(tt.in), tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	in := series(100)
	slices.Reverse(in)
	got := summarize(in)
	want := Summary{Count: 100, Min: 1, Mean: 50.5, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize(100ms..1ms) = %+v; want %+v", got, want)
	}
	if !slices.IsSorted(in) {
		t.Errorf("summarize did not sort its input")
	}
	if got := summarize(nil); got != (Summary{}) {
		t.Errorf("summarize(nil) = %+v; want zero", got)
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{100, time.Second, 100},
		{100, 500 * time.Millisecond, 200},
		{5, 0, 0},
	}
	for _, tt := range tests {
		if got := rate(tt.n, tt.d); got != tt.want {
			t.Errorf("rate(%d, %v) = %v; want %v", tt.n, tt.d, got, tt.want)
		}
	}
}

func TestErrorTally(t *testing.T) {
	var tally errorTally
	for range 3 {
		tally.add(errors.New("b"))
	}
	tally.add(errors.New("a"))
	tally.add(errors.New("c"))
	got := tally.top(2)
	want := []ErrorCount{{"b", 3}, {"a", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("top(2) = %v; want %v", got, want)
	}
	if tally.Total() != 5 {
		t.Errorf("Total() = %d; want 5", tally.Total())
	}
}
