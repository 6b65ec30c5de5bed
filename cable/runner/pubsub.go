package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/redis/go-redis/v9"
)

// setRedisLogger sets go-redis' process-wide logger once.
var setRedisLogger sync.Once

// pubsubConfig holds the pub/sub flags of gocable. Each setting comes from
// its flag when the flag is given on the command line, else from cable.yml
// (--cable-config) when the file has it, else from its environment variable.
// cable.yml goes through ERB with the process environment, so a Rails-style
// url: <%= ENV.fetch("REDIS_URL") { ... } %> sees REDIS_URL as Rails would.
//
// Without a Redis URL, Sentinels or a cable.yml naming the redis adapter,
// gocable uses in-process pub/sub.
type pubsubConfig struct {
	redisURL       string
	channelPrefix  string
	cableConfig    string
	env            string
	sentinels      string
	sentinelMaster string
	postgresURL    string // pubsub_postgres.go
	appRoot        string // --app-root, for solid_cable
	railsEnv       string // the environment resolve chose

	fs *flag.FlagSet // to tell the flags given on the command line

	// lookupEnv reads the environment; nil means os.LookupEnv.
	lookupEnv func(string) (string, bool)
}

// register defines the pub/sub flags on fs.
func (c *pubsubConfig) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.redisURL, "redis-url", "",
		"Redis `URL` for pub/sub: redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path (env REDIS_URL; overrides --cable-config)")
	fs.StringVar(&c.channelPrefix, "channel-prefix", "",
		"`prefix` of the Redis channels, as channel_prefix in cable.yml; given but empty, it is an empty prefix (\":stream\"), as in Rails (env CABLE_CHANNEL_PREFIX)")
	fs.StringVar(&c.cableConfig, "cable-config", "",
		"`path` of the Rails app's config/cable.yml, to read adapter, url, channel_prefix and other Redis settings from")
	fs.StringVar(&c.env, "env", "",
		"Rails `environment` of --cable-config to use (env RAILS_ENV, else RACK_ENV; default development)")
	fs.StringVar(&c.sentinels, "redis-sentinels", "",
		"comma-separated Sentinel `addresses` (host:port); Redis is then the master they name (env REDIS_SENTINELS)")
	fs.StringVar(&c.sentinelMaster, "redis-master", "",
		"Sentinel master `name` (env REDIS_SENTINEL_MASTER; default: cable.yml name, else the host of the Redis URL, as redis-rb reads it)")
	c.registerPostgres(fs)
	c.registerSolidCable(fs)
}

// pubsub builds the pub/sub the flags describe. ps is nil when gocable should
// use its in-process default: no Redis is configured, or cable.yml names the
// async, inline or test adapter. state reports the pub/sub for the health
// endpoint: "ok" while the Redis subscriber connection is up, else
// "connecting", "down" or "closed" (redispubsub.State), and "memory" for
// in-process pub/sub. closeFn stops the pub/sub and closes its Redis client.
// state and closeFn are never nil when err is nil.
//
// It routes go-redis' own log, which repeats every failed dial, to logger at
// Debug: the outage itself is logged once by redispubsub.PubSub.
func (c *pubsubConfig) pubsub(logger *slog.Logger) (ps cable.PubSub, state func() string, closeFn func() error, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	s, source, warning, err := c.resolve()
	if err != nil {
		return nil, nil, nil, err
	}
	if warning != nil {
		logger.Warn(warning.msg, warning.attrs...)
	}
	if s != nil && s.Adapter == "postgresql" {
		return postgresPubSub(s, source, logger)
	}
	if s == nil {
		logger.Info("gocable: in-process pub/sub: broadcasts reach this process only", "source", source)
		return nil, func() string { return "memory" }, func() error { return nil }, nil
	}
	if s.Adapter == "solid_cable" {
		return c.solidCable(s, source, logger)
	}
	opts, err := clientOptions(s, os.Getpid())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	// go-redis' logger is one per process: the first Run's logger keeps it
	// (a second Run in the same process, as in tests, logs its dial
	// failures there too).
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{logger}) })
	client := opts.newClient()
	r := redispubsub.New(client, redispubsub.Config{ChannelPrefix: s.ChannelPrefix, Logger: logger})
	prefix := "(none)" // an empty prefix shows as ""
	if s.ChannelPrefix != nil {
		prefix = *s.ChannelPrefix
	}
	attrs := []any{"redis", opts.describe(), "channel_prefix", prefix, "source", source}
	logger.Info("gocable: redis pub/sub", attrs...)
	if len(s.Ignored) > 0 {
		logger.Info("gocable: cable.yml keys not used by gocable", "keys", strings.Join(s.Ignored, ","))
	}
	state = func() string {
		if st := r.State(); st != redispubsub.StateUp {
			return st.String()
		}
		return "ok"
	}
	return r, state, func() error {
		_ = r.Close()
		return client.Close()
	}, nil
}

// logLine is a log message with its attributes.
type logLine struct {
	msg   string
	attrs []any
}

// resolve merges the flags, cable.yml and the environment. A nil
// *railsconfig.Cable means in-process pub/sub. source tells where the settings
// came from, for the log. warning, when not nil, is to be logged at WARN.
func (c *pubsubConfig) resolve() (s *railsconfig.Cable, source string, warning *logLine, err error) {
	lookup := c.lookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	given := make(map[string]bool)
	if c.fs != nil {
		c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	}
	env := func(name string) string { v, _ := lookup(name); return v }
	if given["postgres-url"] && (given["redis-url"] || given["redis-sentinels"]) {
		return nil, "", nil, errPostgresAndRedis
	}

	if c.cableConfig != "" {
		railsEnv, envFrom := c.env, "--env"
		if !given["env"] || railsEnv == "" {
			// Rails.env (railties/lib/rails.rb): RAILS_ENV, RACK_ENV,
			// "development"; empty values don't count.
			switch {
			case env("RAILS_ENV") != "":
				railsEnv, envFrom = env("RAILS_ENV"), "RAILS_ENV"
			case env("RACK_ENV") != "":
				railsEnv, envFrom = env("RACK_ENV"), "RACK_ENV"
			default:
				railsEnv, envFrom = "development", "default (no --env, RAILS_ENV or RACK_ENV)"
			}
		}
		s, err = railsconfig.LoadCable(c.cableConfig, railsEnv, lookup)
		if err != nil {
			return nil, "", nil, err
		}
		source = fmt.Sprintf("%s (%s)", c.cableConfig, railsEnv)
		c.railsEnv = railsEnv
		if given["postgres-url"] || s.Adapter == "postgresql" {
			return c.postgresSettings(s, source, given, lookup)
		}
		switch s.Adapter {
		case "redis":
		case "solid_cable":
			return s, source, nil, c.solidCableOverrides(s, given, lookup)
		case "async", "inline", "test":
			// In-process adapters (actioncable/lib/action_cable/
			// subscription_adapter/{async,inline,test}.rb), unless a
			// flag asks for Redis.
			if !given["redis-url"] && !given["redis-sentinels"] {
				// The cable.yml was given to share Rails' Redis, so an
				// in-process adapter is most likely the wrong
				// environment (a forgotten --env production): say so
				// loudly, as nothing else will fail.
				return nil, source + ", adapter " + s.Adapter, &logLine{
					msg: fmt.Sprintf("gocable: %s selects the %s adapter for environment %q: in-process pub/sub, so broadcasts from Rails (and from other gocable processes) will NOT arrive, and the built-in channels default to on; "+
						"choose the environment whose adapter is redis with --env (or RAILS_ENV / RACK_ENV), or give --redis-url", c.cableConfig, s.Adapter, railsEnv),
					attrs: []any{"file", c.cableConfig, "env", railsEnv, "env_from", envFrom, "adapter", s.Adapter},
				}, nil
			}
			s.Adapter = "redis"
		default:
			return nil, "", nil, fmt.Errorf("%s: adapter %q is not supported: gocable interoperates with Rails through the redis, postgresql and solid_cable adapters only", source, s.Adapter)
		}
	} else {
		s = &railsconfig.Cable{Adapter: "redis"}
		source = "flags and environment"
		if given["postgres-url"] || env("GOCABLE_POSTGRES_URL") != "" {
			return c.postgresSettings(s, source, given, lookup)
		}
		if c.redisURL == "" && c.sentinels == "" && env("REDIS_URL") == "" && env("REDIS_SENTINELS") == "" {
			return nil, "no --redis-url, REDIS_URL or --cable-config", nil, nil
		}
	}

	// The URL: a flag replaces every connection setting of cable.yml;
	// without one, redis-rb falls back to REDIS_URL (lib/redis/client.rb,
	// DEFAULTS), then to localhost.
	switch {
	case given["redis-url"]:
		s.URL = c.redisURL
		s.Host, s.Port, s.Path, s.DB, s.Username, s.Password, s.SSL = nil, nil, nil, nil, nil, nil, nil
	case s.URL == "":
		s.URL = env("REDIS_URL")
	}
	if given["channel-prefix"] {
		s.ChannelPrefix = &c.channelPrefix
	} else if s.ChannelPrefix == nil {
		if v, ok := lookup("CABLE_CHANNEL_PREFIX"); ok {
			s.ChannelPrefix = &v
		}
	}
	switch {
	case given["redis-sentinels"]:
		s.Sentinels = splitList(c.sentinels)
	case len(s.Sentinels) == 0:
		s.Sentinels = splitList(env("REDIS_SENTINELS"))
	}
	switch {
	case given["redis-master"]:
		s.MasterName = c.sentinelMaster
	case s.MasterName == "":
		s.MasterName = env("REDIS_SENTINEL_MASTER")
	}
	return s, source, nil, nil
}

// redisClientOptions holds the options of the client to create: opt, or
// failover for Sentinel.
type redisClientOptions struct {
	opt      *redis.Options
	failover *redis.FailoverOptions
}

func (o redisClientOptions) newClient() redis.UniversalClient {
	if o.failover != nil {
		return redis.NewFailoverClient(o.failover)
	}
	return redis.NewClient(o.opt)
}

// describe returns the target for the log, without credentials.
func (o redisClientOptions) describe() string {
	if o.failover != nil {
		return fmt.Sprintf("sentinel master %q via %s db %d", o.failover.MasterName, strings.Join(o.failover.SentinelAddrs, ","), o.failover.DB)
	}
	scheme := "redis"
	if o.opt.TLSConfig != nil {
		scheme = "rediss"
	}
	if o.opt.Network == "unix" {
		return fmt.Sprintf("unix://%s db %d", o.opt.Addr, o.opt.DB)
	}
	return fmt.Sprintf("%s://%s/%d", scheme, o.opt.Addr, o.opt.DB)
}

// clientOptions turns settings into go-redis options as redis-rb reads its
// options (lib/redis/client.rb, _parse_options): the URL's parts are the
// defaults that the explicit keys override; the client name is cable.yml's
// id, else "gocable-PID-<pid>", as Rails names its connections
// "ActionCable-PID-<pid>" (actioncable/lib/action_cable/subscription_adapter/
// base.rb, identifier).
func clientOptions(s *railsconfig.Cable, pid int) (redisClientOptions, error) {
	raw := s.URL
	if raw == "" {
		raw = "redis://localhost:6379/0"
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return redisClientOptions{}, fmt.Errorf("redis url %s: %s", redactURL(raw), redisURLReason(raw, err))
	}
	if s.Path != nil {
		opt.Network, opt.Addr = "unix", *s.Path
	}
	if s.Host != nil || s.Port != nil {
		host, port, err := net.SplitHostPort(opt.Addr)
		if err != nil || opt.Network == "unix" {
			host, port = "localhost", "6379"
		}
		if s.Host != nil {
			host = *s.Host
		}
		if s.Port != nil {
			port = strconv.Itoa(*s.Port)
		}
		opt.Network, opt.Addr = "tcp", net.JoinHostPort(host, port)
	}
	if s.Username != nil {
		opt.Username = *s.Username
	}
	if s.Password != nil {
		opt.Password = *s.Password
	}
	if s.DB != nil {
		opt.DB = *s.DB
	}
	if s.SSL != nil {
		switch {
		case !*s.SSL:
			opt.TLSConfig = nil
		case opt.TLSConfig == nil:
			host, _, _ := net.SplitHostPort(opt.Addr)
			opt.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
	}
	if s.SSLVerifyNone && opt.TLSConfig != nil {
		opt.TLSConfig.InsecureSkipVerify = true // ssl_params: {verify_mode: VERIFY_NONE}, as the app asked
	}
	opt.ClientName = "gocable-PID-" + strconv.Itoa(pid)
	if s.ID != nil {
		opt.ClientName = *s.ID
	}

	if len(s.Sentinels) == 0 {
		return redisClientOptions{opt: opt}, nil
	}
	master := s.MasterName
	if master == "" {
		// redis-rb takes the master name from the URL's host:
		// url: redis://mymaster with sentinels.
		if u, err := url.Parse(raw); err == nil {
			master = u.Hostname()
		}
	}
	if master == "" {
		return redisClientOptions{}, errors.New("sentinels are given without a master name (--redis-master, cable.yml name, or the host of the URL)")
	}
	for _, a := range s.Sentinels {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return redisClientOptions{}, fmt.Errorf("sentinel address %q: want host:port", a)
		}
	}
	return redisClientOptions{failover: &redis.FailoverOptions{
		MasterName:       master,
		SentinelAddrs:    s.Sentinels,
		SentinelUsername: s.SentinelUsername,
		SentinelPassword: s.SentinelPassword,
		ClientName:       opt.ClientName,
		Username:         opt.Username,
		Password:         opt.Password,
		DB:               opt.DB,
		TLSConfig:        opt.TLSConfig,
	}}, nil
}

// redactURL returns raw with its password replaced by "xxxxx".
// redisURLReason says why raw is not a Redis URL without repeating it: a
// *url.Error quotes the whole URL, password included.
func redisURLReason(raw string, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil {
		if p, ok := u.User.Password(); ok && p != "" && strings.Contains(msg, p) {
			return "invalid"
		}
	}
	if strings.Contains(msg, raw) {
		return "invalid"
	}
	return msg
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// redisLogger routes go-redis' log lines to slog at Debug.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "go-redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}
