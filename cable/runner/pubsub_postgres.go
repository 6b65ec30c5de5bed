package runner

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/pgpubsub"
	"github.com/gocable/gocable/cable/railsconfig"
)

// The PostgreSQL pub/sub (Rails' postgresql adapter, package pgpubsub) is
// chosen by --postgres-url (env GOCABLE_POSTGRES_URL when there is no
// cable.yml), or by adapter: postgresql in cable.yml. Its database is, in
// order: --postgres-url, cable.yml's url, GOCABLE_POSTGRES_URL, then
// DATABASE_URL, which Rails itself would use through Active Record when
// database.yml does not name the database (config/database.yml is not read
// yet).

// registerPostgres defines the PostgreSQL pub/sub flag on fs.
func (c *pubsubConfig) registerPostgres(fs *flag.FlagSet) {
	fs.StringVar(&c.postgresURL, "postgres-url", "",
		"PostgreSQL `URL` for pub/sub over LISTEN/NOTIFY, as Rails' postgresql adapter: postgres://[user:password@]host:port/db (env GOCABLE_POSTGRES_URL; overrides --cable-config's adapter and url; with adapter: postgresql in cable.yml and no url, DATABASE_URL)")
}

// errPostgresAndRedis is returned when flags ask for both adapters.
var errPostgresAndRedis = errors.New("--postgres-url and --redis-url (or --redis-sentinels) both choose the pub/sub: give one")

// postgresSettings completes s, from cable.yml or empty, for the
// PostgreSQL pub/sub: its URL (s.URL) and channel prefix.
func (c *pubsubConfig) postgresSettings(s *railsconfig.Cable, source string, given map[string]bool, lookup func(string) (string, bool)) (*railsconfig.Cable, string, *logLine, error) {
	env := func(name string) string { v, _ := lookup(name); return v }
	s.Adapter = "postgresql"
	switch {
	case given["postgres-url"]:
		s.URL = c.postgresURL
	case s.URL != "":
	case env("GOCABLE_POSTGRES_URL") != "":
		s.URL = env("GOCABLE_POSTGRES_URL")
	default:
		s.URL = env("DATABASE_URL")
	}
	if s.URL == "" {
		return nil, "", nil, fmt.Errorf("%s: the postgresql adapter needs a database: give --postgres-url, a url in cable.yml, or DATABASE_URL (gocable does not read config/database.yml yet)", source)
	}
	if given["channel-prefix"] {
		s.ChannelPrefix = &c.channelPrefix
	} else if s.ChannelPrefix == nil {
		if v, ok := lookup("CABLE_CHANNEL_PREFIX"); ok {
			s.ChannelPrefix = &v
		}
	}
	return s, source, nil, nil
}

// postgresPubSub builds the PostgreSQL pub/sub of s; see pubsub for its
// results.
func postgresPubSub(s *railsconfig.Cable, source string, logger *slog.Logger) (cable.PubSub, func() string, func() error, error) {
	p, err := pgpubsub.New(s.URL, pgpubsub.Config{ChannelPrefix: s.ChannelPrefix, Logger: logger})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	prefix := "(none)"
	if s.ChannelPrefix != nil {
		prefix = *s.ChannelPrefix
	}
	logger.Info("gocable: postgresql pub/sub (LISTEN/NOTIFY)", "database", redactPostgresURL(s.URL), "channel_prefix", prefix, "source", source)
	if len(s.Ignored) > 0 {
		logger.Info("gocable: cable.yml keys not used by gocable", "keys", strings.Join(s.Ignored, ","))
	}
	state := func() string {
		if st := p.State(); st != pgpubsub.StateUp {
			return st.String()
		}
		return "ok"
	}
	return p, state, p.Close, nil
}

// redactPostgresURL returns a URL without its password, or "(key=value
// connection string)" for the libpq form, which may hold one.
func redactPostgresURL(raw string) string {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return "(key=value connection string)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
