// Package runner is the gocable command as a library: a program that
// registers its own Go channels calls [Main] and gets every flag,
// environment variable and cable.yml setting of gocable, Rails cookie
// identification, Turbo Streams, the broadcast endpoint, health, metrics,
// logs, signals and graceful shutdown.
//
// A whole program:
//
//	func main() {
//		runner.Main(runner.Options{
//			Channels: map[string]func() cable.Channel{
//				"RoomChannel": func() cable.Channel { return &RoomChannel{} },
//			},
//		})
//	}
//
// The gocable command is runner.Main(runner.Options{}).
//
// # Configuration
//
// Every flag whose help text names an environment variable (all but
// --cable-config and a program's own Flags) can also be set from it; a
// flag on the command line wins, and a value the flag would
// refuse is an error, whichever way it came. Run the program with -h for
// the list. The pub/sub settings may also come from a Rails
// config/cable.yml (--cable-config, --env), ERB included, read by package
// [github.com/gocable/gocable/cable/railsconfig]. A cable.yml section whose
// adapter is async, inline or test means in-process pub/sub, and is logged
// at WARN: broadcasts from Rails will not arrive.
//
// # A program of its own
//
// [Options] adds the program's channels (with them, the built-in
// ChatChannel and BenchmarkChannel are off unless --channels names
// them), flags, an Authenticator, a Setup hook that sees the built
// [App] (add routes, wrap [App].Identified with a database lookup) and a
// Stop hook for what Setup opened. The pieces are importable on their
// own too: [github.com/gocable/gocable/cable/cablehttp] (broadcast,
// health and metrics handlers), [github.com/gocable/gocable/auth/identify]
// (the --identify rules), [github.com/gocable/gocable/cable/redispubsub].
//
// # Lifecycle
//
// [Run] (and so [Main]) builds the server, calls [Options].Setup, listens,
// and serves until its context ends. Then it closes the listener, sends
// every client {"type":"disconnect","reason":"server_restart",
// "reconnect":true} (spread over --shutdown-drain), waits for the
// connections to end and calls
// [Options].Stop, within --shutdown-timeout. Nothing it started outlives
// it, except go-redis' process-wide logger, which the first Run sets.
//
// While it serves, the runner returns freed memory to the OS
// (debug.FreeOSMemory) once the connection count has fallen to half its
// recent peak or less, at most once per --return-memory-interval (10s
// by default; 0 never): the Go runtime otherwise keeps the heap a crowd of
// departed connections used for minutes.
package runner
