// Command cablebench is a load tool that speaks the ActionCable protocol
// (actioncable-v1-json) to any ActionCable server: gocable, AnyCable or
// Rails. It drives the websocket-shootout BenchmarkChannel that
// cmd/gocable ships (channels.Benchmark), whose contract is:
//
//   - the identifier is {"channel":"BenchmarkChannel"} (see -identifier);
//   - a subscription streams "all";
//   - the action "echo" transmits its data back to the sender;
//   - the action "broadcast" broadcasts its data to "all", then transmits
//     it to the sender with "action":"broadcastResult".
//
// Usage:
//
//	cablebench idle      [flags]   hold N subscribed connections; server RSS per connection
//	cablebench connect   [flags]   connect+subscribe rate and setup latency
//	cablebench broadcast [flags]   fan-out latency, missing messages, server CPU per delivery
//	cablebench echo      [flags]   perform -> transmit round-trip latency
//	cablebench soak      [flags]   churn waves of connections; does the server's memory come back?
//
// Run cablebench MODE -h for a mode's flags (one or two dashes both work).
// Every mode prints a progress line to stderr every second, a table to
// stdout at the end, and, with -json FILE, the same results as JSON. The
// exit status is 0 for a clean run, 3 when the run finished but
// connections, messages or round trips failed, 2 for bad usage and 1 when
// the run could not be done.
//
// Server figures need -pid, the server's process id on this machine; soak
// reads them from the server's /metrics as well (-metrics-url), so it
// needs -pid only for RSS split into anonymous and file-backed memory or
// against a server without gocable's process gauges. Each
// mode also reports the CPU cablebench itself used: a tool near 100% of
// its core is measuring itself as much as the server.
//
// # Measurements
//
// Latencies are measured on the tool's monotonic clock. A payload carries
// its sequence number, its send time in nanoseconds since the run started,
// and a run token, so deliveries from another run on the same server are
// ignored:
//
//	{"action":"broadcast","run":"5f1c2a9e","seq":3,"sent":1523000042,"pad":"..."}
//
// Resident memory is VmRSS from /proc/PID/status and CPU is utime+stime
// from /proc/PID/stat, in USER_HZ ticks of 10 ms, so give CPU measurements
// a few seconds.
//
// # Safety
//
// The tool refuses any target that is not a loopback address (127.0.0.0/8,
// ::1 or localhost) unless -allow-remote is given, both when it parses
// -url and -publish-url and again when it dials. Counts, rates and
// durations have hard caps, and -timeout bounds the whole run. The soft
// RLIMIT_NOFILE is raised to the hard limit at start, so 10k+ sockets fit.
//
// # Clients
//
// A client connection is lean: a 1 KiB read buffer, write buffers from a
// pool (held only while writing), one reader goroutine once subscribed,
// and frames parsed in place without allocating. Ten thousand idle
// clients take about 95 MB, mostly their reader goroutines' stacks.
package main
