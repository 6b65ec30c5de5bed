package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServerSample is the server's resources at one moment of a soak. A
// figure that neither /metrics nor /proc gave is -1.
type ServerSample struct {
	Label       string  `json:"label"`
	AtS         float64 `json:"at_s"` // seconds since the soak started
	Goroutines  int64   `json:"goroutines"`
	Connections int64   `json:"connections"`
	Streams     int64   `json:"streams"`
	FDs         int64   `json:"fds"`
	RSS         int64   `json:"rss_bytes"`
	// RSSAnon and RSSFile split RSS into anonymous memory (heap, stacks,
	// runtime metadata) and file-backed pages (mostly the binary's code,
	// paged in as code paths first run); they need -pid.
	RSSAnon int64 `json:"rss_anon_bytes"`
	RSSFile int64 `json:"rss_file_bytes"`
}

// String formats s for the table.
func (s ServerSample) String() string {
	f := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return strconv.FormatInt(v, 10)
	}
	rss := "-"
	if s.RSS >= 0 {
		rss = fmtBytes(float64(s.RSS))
	}
	if s.RSSAnon >= 0 && s.RSSFile >= 0 {
		rss += fmt.Sprintf(" (anon %s, file %s)", fmtBytes(float64(s.RSSAnon)), fmtBytes(float64(s.RSSFile)))
	}
	return fmt.Sprintf("goroutines %s, conns %s, streams %s, fds %s, RSS %s",
		f(s.Goroutines), f(s.Connections), f(s.Streams), f(s.FDs), rss)
}

// probe reads the server's figures from its Prometheus endpoint and, with
// a pid, from /proc (which then wins for RSS and fds).
type probe struct {
	metricsURL string // "" when not used
	pid        int
	client     *http.Client
}

// newProbe returns a probe for o, checking that it can read something.
func newProbe(ctx context.Context, o *options) (*probe, error) {
	p := &probe{pid: o.pid}
	if o.metricsURL != "none" {
		p.metricsURL = o.metricsURL
		p.client = &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{DialContext: guardedDial(o.allowRemote), DisableKeepAlives: true},
		}
		if _, err := p.scrape(ctx); err != nil {
			return nil, err
		}
	}
	if p.metricsURL == "" && p.pid == 0 {
		return nil, fmt.Errorf("cablebench: soak needs the server's /metrics (-metrics-url) or its -pid")
	}
	return p, nil
}

// defaultMetricsURL is /metrics on the host of the cable URL ws.
func defaultMetricsURL(ws *url.URL) string {
	scheme := "http"
	if ws.Scheme == "wss" {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: ws.Host, Path: "/metrics"}).String()
}

// scrape reads the unlabelled samples of the Prometheus text format.
func (p *probe) scrape(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("cablebench: metrics: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cablebench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cablebench: metrics: %s: HTTP %d", p.metricsURL, resp.StatusCode)
	}
	return parseMetrics(io.LimitReader(resp.Body, 1<<20))
}

// parseMetrics reads "name value" lines; comments, labelled samples and
// timestamps are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := make(map[string]float64)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		m[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cablebench: metrics: %w", err)
	}
	return m, nil
}

// sample reads the server's figures now.
func (p *probe) sample(ctx context.Context, label string, start time.Time) (ServerSample, error) {
	s := ServerSample{Label: label, AtS: time.Since(start).Seconds(), Goroutines: -1, Connections: -1, Streams: -1, FDs: -1, RSS: -1, RSSAnon: -1, RSSFile: -1}
	if p.metricsURL != "" {
		m, err := p.scrape(ctx)
		if err != nil {
			return s, err
		}
		get := func(name string) int64 {
			if v, ok := m[name]; ok {
				return int64(v)
			}
			return -1
		}
		s.Goroutines = get("gocable_goroutines")
		s.Connections = get("gocable_connections")
		s.Streams = get("gocable_streams")
		s.FDs = get("gocable_process_open_fds")
		s.RSS = get("gocable_process_resident_memory_bytes")
	}
	if p.pid > 0 {
		st, err := procStatus(p.pid)
		if err != nil {
			return s, err
		}
		kb, err := statusField(st, "VmRSS")
		if err != nil {
			return s, err
		}
		s.RSS = kb * 1024
		if kb, err := statusField(st, "RssAnon"); err == nil {
			s.RSSAnon = kb * 1024
		}
		if kb, err := statusField(st, "RssFile"); err == nil {
			s.RSSFile = kb * 1024
		}
		if n, err := countFDs(p.pid); err == nil {
			s.FDs = n
		}
	}
	return s, nil
}

// countFDs counts the open file descriptors of process pid.
func countFDs(pid int) (int64, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("cablebench: server process: %w", err)
	}
	defer d.Close()
	var n int64
	for {
		names, err := d.Readdirnames(1024)
		n += int64(len(names))
		if err != nil || len(names) == 0 {
			break
		}
	}
	if pid == os.Getpid() {
		n-- // the directory just read
	}
	return n, nil
}
