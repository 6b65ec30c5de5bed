// Package cablehttp holds the HTTP endpoints that sit beside a
// [cable.Server] in a program: [Broadcast], which lets any program
// broadcast to streams over HTTP with a bearer token; [Health], a JSON
// health check for load balancers, with [Health.Live] and [Health.Ready]
// for orchestrators; [Canary], which proves that broadcasts come back
// through the pub/sub; and [Metrics], the server's counters in the
// Prometheus text format. The gocable command serves them at /_broadcast,
// /health, /health/live, /health/ready and /metrics; a program of its own
// mounts them where it likes:
//
//	ps := &cable.MemoryPubSub{} // or a redispubsub.PubSub
//	srv := &cable.Server{PubSub: ps}
//	canary := &cablehttp.Canary{PubSub: ps}
//	go canary.Run(ctx) // ends when ctx is cancelled
//	health := cablehttp.Health{Server: srv, Canary: canary}
//	mux := http.NewServeMux()
//	mux.Handle("/cable", srv)
//	mux.Handle("/_broadcast", cablehttp.Broadcast{Server: srv, Token: os.Getenv("BROADCAST_SECRET")})
//	mux.Handle("/health", health)
//	mux.Handle("/health/live", health.Live())
//	mux.Handle("/health/ready", health.Ready())
//	mux.Handle("/metrics", cablehttp.Metrics{Server: srv, Canary: canary})
//
// Each handler is a plain struct whose zero value is safe: a Broadcast
// without a Token refuses every request, and a Health or Metrics without a
// Server reports zero connections. Each field names the small interface
// it needs ([Broadcaster], [StatsSource]), which *cable.Server satisfies.
//
// # Pub/sub state
//
// Health and Metrics take the pub/sub's state as a function returning a
// word: "ok" (reachable) or "memory" (in-process, always reachable) count
// as healthy; any other word, such as "connecting", "down" or "closed",
// as not. A nil function means "memory". With a Canary whose probes are
// late, Health reports the word "stalled", which is not healthy either.
//
// # Concurrency
//
// The handlers start no goroutines and are safe for concurrent use, as
// long as their fields are not changed while they serve. A Canary's
// Status is safe for concurrent use; its only goroutine is the one that
// calls Run, owned by the caller and ended by cancelling Run's context.
package cablehttp
