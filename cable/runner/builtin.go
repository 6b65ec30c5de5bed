package runner

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// builtinChannel is a channel of package channels that gocable can serve.
type builtinChannel struct {
	flag       string // its name in --channels
	name       string // its Ruby class name
	newChannel func(srv *cable.Server) cable.Channel
}

// builtinChannels are the ready-made channels of package channels that
// gocable can serve, by the name --channels knows them by.
var builtinChannels = []builtinChannel{
	{"chat", "ChatChannel", func(srv *cable.Server) cable.Channel { return &channels.Chat{Broadcaster: srv} }},
	{"benchmark", "BenchmarkChannel", func(srv *cable.Server) cable.Channel { return &channels.Benchmark{Broadcaster: srv} }},
}

// builtinConfig chooses which built-in channels are served.
//
// They have no authorization of their own and stream names ("chat_<room>",
// "all") that a Rails app's own channels commonly use. On a pub/sub shared
// with a Rails app they would answer subscribes that the app's ChatChannel
// authorizes, so anyone could read and write those streams. They are
// therefore on by default only with the in-process pub/sub, and off with
// Redis unless --channels names them.
type builtinConfig struct {
	channels string
	set      bool // --channels or GOCABLE_CHANNELS was given
}

func (c *builtinConfig) register(fs *flag.FlagSet) {
	v, ok := os.LookupEnv("GOCABLE_CHANNELS")
	c.channels, c.set = v, ok
	fs.Func("channels", `built-in channels to serve: "chat" (ChatChannel), "benchmark" (BenchmarkChannel), comma-separated, or "none"; `+
		`default: both with the in-process pub/sub, none with Redis, where a Rails app's channels of the same names would be bypassed (env GOCABLE_CHANNELS)`,
		func(s string) error {
			c.channels, c.set = s, true
			return nil
		})
}

// names returns the flag names of the channels to serve; shared tells
// whether the pub/sub is shared with other processes (Redis).
func (c *builtinConfig) names(shared bool) ([]string, error) {
	if !c.set {
		if shared {
			return nil, nil
		}
		return []string{"chat", "benchmark"}, nil
	}
	var out []string
	for _, f := range strings.Split(c.channels, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "" || f == "none":
			continue
		case !slices.ContainsFunc(builtinChannels, func(b builtinChannel) bool { return b.flag == f }):
			return nil, fmt.Errorf("--channels: unknown channel %q (want chat, benchmark or none)", f)
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	return out, nil
}

// install registers the chosen built-in channels on srv. shared tells
// whether the pub/sub is shared with other processes. own holds the
// program's own channels (runner.Options.Channels): when it has any, the
// built-ins are off unless --channels names them, since they authorize
// nothing and use stream names the program's channels may use too; and
// a built-in of the same name as one of them is never served.
func (c *builtinConfig) install(srv *cable.Server, shared bool, own map[string]func() cable.Channel, logger *slog.Logger) error {
	names, err := c.names(shared || len(own) > 0)
	if err != nil {
		return err
	}
	var served []string
	for _, b := range builtinChannels {
		if !slices.Contains(names, b.flag) {
			continue
		}
		if _, ok := own[b.name]; ok {
			logger.Info("gocable: built-in channel replaced by the program's own", "channel", b.name)
			continue
		}
		newChannel := b.newChannel
		if err := handleChannel(srv, b.name, func() cable.Channel { return newChannel(srv) }); err != nil {
			return fmt.Errorf("channel %s: %w", b.name, err)
		}
		served = append(served, b.name)
	}
	switch {
	case len(served) > 0:
		logger.Info("gocable: built-in channels", "channels", strings.Join(served, ","))
	case c.set:
	case len(own) > 0:
		logger.Info("gocable: built-in channels off: the program serves channels of its own; enable them with --channels")
	case shared:
		logger.Info("gocable: built-in channels off: the pub/sub is shared with other processes; enable them with --channels")
	}
	if len(own) > 0 {
		names := make([]string, 0, len(own))
		for name := range own {
			names = append(names, name)
		}
		slices.Sort(names)
		logger.Info("gocable: the program's channels", "channels", strings.Join(names, ","))
	}
	return nil
}
