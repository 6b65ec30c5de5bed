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
// Every flag can also be set from the environment variable named in its
// help text; a flag on the command line wins, and a value the flag would
// refuse is an error, whichever way it came. Run the program with -h for
// the list. The pub/sub settings may also come from a Rails
// config/cable.yml (--cable-config, --env), ERB included, read by package
// [github.com/gocable/gocable/cable/railsconfig]. A cable.yml section whose
// adapter is async, inline or test means in-process pub/sub, and is logged
// at WARN: broadcasts from Rails will not arrive.
//
// # Lifecycle
//
// [Run] (and so [Main]) builds the server, calls [Options].Setup, listens,
// and serves until its context ends. Then it closes the listener, sends
// every client {"type":"disconnect","reason":"server_restart",
// "reconnect":true} (spread over --shutdown-drain) and waits for the connections to end, within
// --shutdown-timeout. Nothing it started outlives it.
package runner
