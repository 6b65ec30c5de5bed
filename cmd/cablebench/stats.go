package main

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Summary describes a set of durations. Times are in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize sorts ds in place and describes it.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	return Summary{
		Count: len(ds),
		Min:   ms(ds[0]),
		Mean:  sum / float64(len(ds)) / float64(time.Millisecond),
		P50:   ms(percentile(ds, 50)),
		P95:   ms(percentile(ds, 95)),
		P99:   ms(percentile(ds, 99)),
		Max:   ms(ds[len(ds)-1]),
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are less than or equal to it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps float error from pushing an exact rank up (99.9
	// percent of 1000 must be rank 999, not 1000).
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate returns n per second over d, or 0.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// errorTally counts errors by message and keeps the most frequent ones for
// the report. It is safe for concurrent use.
type errorTally struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

// add counts err.
func (t *errorTally) add(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	msg := err.Error()
	if _, ok := t.counts[msg]; ok || len(t.counts) < 100 {
		t.counts[msg]++
	} else {
		t.counts["(other errors)"]++
	}
	t.total++
}

// Total returns how many errors were counted.
func (t *errorTally) Total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// top returns up to n messages, most frequent first, each with its count.
func (t *errorTally) top(n int) []ErrorCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ErrorCount, 0, len(t.counts))
	for msg, c := range t.counts {
		out = append(out, ErrorCount{Error: msg, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Error < out[j].Error
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// ErrorCount is one distinct error and how often it happened.
type ErrorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}
