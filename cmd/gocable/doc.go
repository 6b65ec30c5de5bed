// Command gocable runs an ActionCable server: point the official
// @rails/actioncable client (or Turbo) at ws://host:8080/cable.
//
// Usage:
//
//	gocable [flags]            run the server
//	gocable cookie [flags]     decode a Rails cookie with the server's settings
//
// Every flag can also be set from the environment variable named in its
// help text; a flag on the command line wins, and a value the flag would
// refuse is an error. Run gocable -h for the list.
//
// SIGTERM or SIGINT shuts down gracefully: every client is sent
// {"type":"disconnect","reason":"server_restart","reconnect":true}, within
// --shutdown-timeout; a second signal ends the process at once.
//
// All of it is package [github.com/gocable/gocable/cable/runner]: a program
// that serves channels of its own builds the same binary with
// runner.Main and its channels in Options.
package main
