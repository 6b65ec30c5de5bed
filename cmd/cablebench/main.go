package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Hard caps: no flag can ask for more.
const (
	maxConns       = 100_000
	maxConcurrency = 5_000
	maxMessages    = 100_000
	maxDeliveries  = 10_000_000 // subscribers × messages
	maxRoundTrips  = 10_000_000
	maxPad         = 64 << 10
	maxTimeout     = time.Hour
	maxDuration    = 10 * time.Minute // settle, hold, drain, baseline, dial timeout
	minInterval    = time.Millisecond
	maxInterval    = time.Minute
)

// Exit statuses.
const (
	exitOK       = 0
	exitError    = 1 // bad usage or the run could not be done
	exitUsage    = 2
	exitFailures = 3 // the run finished, but connections, messages or round trips failed
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the flags of a run, checked.
type options struct {
	mode        string
	url         string
	origin      string
	identifier  string
	allowRemote bool
	pid         int
	jsonPath    string
	timeout     time.Duration
	progress    time.Duration
	dialTimeout time.Duration

	n, c int

	settle, hold time.Duration // idle

	keep bool // connect

	m           int // broadcast
	interval    time.Duration
	publishURL  string
	publishBody string
	publishHdr  headerFlag
	pad         int
	drain       time.Duration
	baseline    time.Duration

	k int // echo

	waves      int // soak
	every      time.Duration
	metricsURL string
	tolerance  float64

	progressOut io.Writer
	flags       map[string]string // every flag's value, for the JSON report
}

// headerFlag collects repeated "Name: value" flags.
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, "; ") }

func (h *headerFlag) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("cablebench: header %q: want Name: value", v)
	}
	*h = append(*h, v)
	return nil
}

const usage = `usage: cablebench MODE [flags]

Modes:
  idle       open -n subscribed connections, -c at a time, hold them, and
             report the server's RSS growth per connection (needs -pid)
  connect    connect+subscribe rate and setup latency of -n connections,
             -c at a time
  broadcast  -n subscribers receive -m broadcasts sent -interval apart:
             delivery latency, fan-out time, missing messages and server
             CPU per delivered message (needs -pid)
  echo       -k perform->transmit round trips over -c connections
  soak       -waves waves of -n subscribed connections, half ended by TCP
             reset, half closed cleanly; the server's goroutines,
             connections, streams, fds and RSS before, after and while
             settling, and whether its memory came back to the baseline

Run cablebench MODE -h for the flags of a mode.
`

// newFlagSet declares the flags of mode into o.
func newFlagSet(mode string, o *options, stderr io.Writer) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("cablebench "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "ws://127.0.0.1:8080/cable", "ActionCable endpoint (ws:// or wss://)")
	fs.StringVar(&o.origin, "origin", "", "Origin header (default http://HOST of -url, https:// for wss)")
	fs.StringVar(&o.identifier, "identifier", `{"channel":"BenchmarkChannel"}`, "subscription identifier (a JSON object)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target that is not loopback")
	fs.IntVar(&o.pid, "pid", 0, "process id of the server, for its RSS and CPU from /proc (0: not measured)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run (at most 1h)")
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line period on stderr (0: none)")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connection's dial, welcome and confirmation")
	switch mode {
	case "idle":
		fs.IntVar(&o.n, "n", 1000, "connections")
		fs.IntVar(&o.c, "c", 100, "connections opened at a time")
		fs.DurationVar(&o.settle, "settle", 10*time.Second, "wait after the last connection before reading the server's RSS (sampled every second)")
		fs.DurationVar(&o.hold, "hold", 0, "keep the connections open this much longer after measuring")
	case "connect":
		fs.IntVar(&o.n, "n", 10000, "connections")
		fs.IntVar(&o.c, "c", 100, "connections opened at a time")
		fs.BoolVar(&o.keep, "keep", false, "keep every connection open until the end instead of closing it once confirmed")
	case "broadcast":
		fs.IntVar(&o.n, "n", 1000, "subscribers")
		fs.IntVar(&o.c, "c", 100, "subscribers connected at a time")
		fs.IntVar(&o.m, "m", 20, "broadcasts")
		fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "time between broadcasts")
		fs.StringVar(&o.publishURL, "publish-url", "", "POST broadcasts to this URL instead of performing the channel's broadcast action")
		fs.StringVar(&o.publishBody, "publish-body", `{"stream":"all","data":{{data_json}}}`,
			"body template for -publish-url: {{data}} is the payload object, {{data_json}} the payload as a JSON string, {{seq}} its sequence number")
		fs.Var(&o.publishHdr, "publish-header", "extra header for -publish-url, \"Name: value\" (repeatable)")
		fs.IntVar(&o.pad, "pad", 0, "bytes of padding added to each payload")
		fs.DurationVar(&o.drain, "drain", 5*time.Second, "wait at most this long after the last broadcast for deliveries")
		fs.DurationVar(&o.baseline, "baseline", 3*time.Second, "measure the idle server's CPU this long before broadcasting, to subtract it (0: off)")
	case "echo":
		fs.IntVar(&o.c, "c", 10, "connections, each doing its share of the round trips one after another")
		fs.IntVar(&o.k, "k", 10000, "round trips in all")
		fs.IntVar(&o.pad, "pad", 0, "bytes of padding added to each payload")
	case "soak":
		fs.IntVar(&o.n, "n", 2000, "connections per wave")
		fs.IntVar(&o.c, "c", 200, "connections opened (and ended) at a time")
		fs.IntVar(&o.waves, "waves", 10, "waves of connections")
		fs.DurationVar(&o.settle, "settle", time.Minute, "follow the server this long after the last wave")
		fs.DurationVar(&o.every, "every", 5*time.Second, "sample the server this often while settling")
		fs.StringVar(&o.metricsURL, "metrics-url", "", "the server's Prometheus endpoint (default http://HOST/metrics of -url; none: use -pid only)")
		fs.Float64Var(&o.tolerance, "tolerance", 10, "verdict: the server's RSS at the end of -settle is within this many percent of the pre-soak baseline")
	default:
		return nil, fmt.Errorf("cablebench: unknown mode %q", mode)
	}
	return fs, nil
}

// parseOptions parses and checks the flags of a mode.
func parseOptions(mode string, args []string, stderr io.Writer) (*options, error) {
	o := &options{mode: mode, progressOut: stderr}
	fs, err := newFlagSet(mode, o, stderr)
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("cablebench: unexpected arguments %q", fs.Args())
	}
	o.flags = make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { o.flags[f.Name] = f.Value.String() })
	if err := o.check(); err != nil {
		return nil, err
	}
	o.flags["origin"] = o.origin
	if o.mode == "soak" {
		o.flags["metrics-url"] = o.metricsURL
	}
	return o, nil
}

// check validates o and fills in defaults that depend on other flags.
func (o *options) check() error {
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("cablebench: -url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("cablebench: -url %q: want ws:// or wss://", o.url)
	}
	if err := checkHost(u, o.allowRemote); err != nil {
		return fmt.Errorf("cablebench: -url: %w", err)
	}
	if o.origin == "" {
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		o.origin = scheme + "://" + u.Host
	}
	if !isJSONObject(o.identifier) {
		return fmt.Errorf("cablebench: -identifier %q is not a JSON object", o.identifier)
	}
	if o.pid < 0 {
		return fmt.Errorf("cablebench: -pid %d", o.pid)
	}
	if o.pid > 0 {
		if _, err := readRSS(o.pid); err != nil {
			return err
		}
	}
	if err := inRange("timeout", o.timeout, time.Millisecond, maxTimeout); err != nil {
		return err
	}
	if err := inRange("dial-timeout", o.dialTimeout, time.Millisecond, maxDuration); err != nil {
		return err
	}
	if o.progress < 0 {
		o.progress = 0
	}
	switch o.mode {
	case "idle", "connect", "broadcast", "soak":
		if o.n < 1 || o.n > maxConns {
			return fmt.Errorf("cablebench: -n %d: want 1 to %d", o.n, maxConns)
		}
		if o.c < 1 || o.c > maxConcurrency {
			return fmt.Errorf("cablebench: -c %d: want 1 to %d", o.c, maxConcurrency)
		}
	case "echo":
		if o.c < 1 || o.c > maxConcurrency {
			return fmt.Errorf("cablebench: -c %d: want 1 to %d", o.c, maxConcurrency)
		}
		if o.k < 1 || o.k > maxRoundTrips {
			return fmt.Errorf("cablebench: -k %d: want 1 to %d", o.k, maxRoundTrips)
		}
		o.n = o.c
	}
	if o.pad < 0 || o.pad > maxPad {
		return fmt.Errorf("cablebench: -pad %d: want 0 to %d", o.pad, maxPad)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"settle", o.settle}, {"hold", o.hold}, {"drain", o.drain}, {"baseline", o.baseline}} {
		if err := inRange(d.name, d.v, 0, maxDuration); err != nil {
			return err
		}
	}
	if o.mode == "soak" {
		if err := o.checkSoak(u); err != nil {
			return err
		}
	}
	if o.mode == "broadcast" {
		if o.m < 1 || o.m > maxMessages {
			return fmt.Errorf("cablebench: -m %d: want 1 to %d", o.m, maxMessages)
		}
		if o.n*o.m > maxDeliveries {
			return fmt.Errorf("cablebench: -n × -m = %d deliveries: at most %d", o.n*o.m, maxDeliveries)
		}
		if err := inRange("interval", o.interval, minInterval, maxInterval); err != nil {
			return err
		}
		if o.publishURL != "" {
			pu, err := url.Parse(o.publishURL)
			if err != nil {
				return fmt.Errorf("cablebench: -publish-url: %w", err)
			}
			if pu.Scheme != "http" && pu.Scheme != "https" {
				return fmt.Errorf("cablebench: -publish-url %q: want http:// or https://", o.publishURL)
			}
			if err := checkHost(pu, o.allowRemote); err != nil {
				return fmt.Errorf("cablebench: -publish-url: %w", err)
			}
			if !strings.Contains(o.publishBody, "{{data}}") && !strings.Contains(o.publishBody, "{{data_json}}") {
				return fmt.Errorf("cablebench: -publish-body has neither {{data}} nor {{data_json}}")
			}
		}
	}
	return nil
}

// sockets returns how many connections a run holds open at once, and the
// file descriptors that takes with some to spare.
func (o *options) sockets() (open int, need uint64) {
	open = o.n
	switch {
	case o.mode == "connect" && !o.keep, o.mode == "echo":
		open = o.c
	case o.mode == "broadcast":
		open = o.n + 1 // the sender
	}
	return open, uint64(open) + 64
}

// checkHost refuses a URL whose host is not loopback, unless allowRemote.
func checkHost(u *url.URL, allowRemote bool) error {
	if u.Host == "" {
		return fmt.Errorf("cablebench: %q has no host", u.String())
	}
	if allowRemote || isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %q", errRemote, u.Hostname())
}

func inRange(name string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return fmt.Errorf("cablebench: -%s %v: want %v to %v", name, v, lo, hi)
	}
	return nil
}

// isJSONObject reports whether s is one JSON object.
func isJSONObject(s string) bool {
	sc := objectScanner{b: []byte(s)}
	for {
		if _, _, ok := sc.next(); !ok {
			break
		}
	}
	return sc.err == nil && sc.done && strings.TrimSpace(s[sc.i:]) == ""
}

// result is what a mode reports.
type result interface {
	// rows are the lines of the table, in order.
	rows() []row
	// failures counts failed connections, missing messages or failed
	// round trips.
	failures() int
}

// row is one line of the table; a row with no value is a heading.
type row struct{ name, value string }

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	mode := args[0]
	o, err := parseOptions(mode, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		if strings.Contains(err.Error(), "unknown mode") {
			fmt.Fprint(stderr, usage)
		}
		return exitUsage
	}
	nofile, err := raiseNoFile()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	if open, need := o.sockets(); nofile < need {
		fmt.Fprintf(stderr, "cablebench: RLIMIT_NOFILE is %d; %d open connections need about %d (raise the hard limit: ulimit -Hn)\n", nofile, open, need)
		return exitError
	}

	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("-timeout %v reached", o.timeout))
	defer cancel()
	rep := &report{
		Mode:      o.mode,
		URL:       o.url,
		Started:   time.Now().UTC().Truncate(time.Millisecond),
		LoadStart: readLoadAvg(),
		NoFile:    nofile,
		Options:   o.flags,
	}
	start := time.Now()
	prog := startProgress(o.progressOut, o.progress)
	res, err := runMode(ctx, o, prog)
	prog.close()
	rep.Seconds = time.Since(start).Seconds()
	rep.LoadEnd = readLoadAvg()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	rep.Result = res
	rep.writeTable(stdout)
	if o.jsonPath != "" {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
	}
	if res.failures() > 0 {
		return exitFailures
	}
	return exitOK
}

func runMode(ctx context.Context, o *options, prog *progress) (result, error) {
	switch o.mode {
	case "idle":
		return runIdle(ctx, o, prog)
	case "connect":
		return runConnect(ctx, o, prog)
	case "broadcast":
		return runBroadcast(ctx, o, prog)
	case "echo":
		return runEcho(ctx, o, prog)
	case "soak":
		return runSoak(ctx, o, prog)
	}
	return nil, fmt.Errorf("cablebench: unknown mode %q", o.mode)
}
