package runner

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/pgpubsub"
	"github.com/gocable/gocable/cable/railsconfig"
)

// The PostgreSQL pub/sub (Rails' postgresql adapter, package pgpubsub) is
// chosen by --postgres-url (env GOCABLE_POSTGRES_URL when there is no
// cable.yml), or by adapter: postgresql in cable.yml. Its database is, in
// order: --postgres-url, cable.yml's url, the primary database of the
// app's config/database.yml (next to --cable-config, or under --app-root,
// with DATABASE_URL merged as Rails does), GOCABLE_POSTGRES_URL, then
// DATABASE_URL.

// registerPostgres defines the PostgreSQL pub/sub flag on fs.
func (c *pubsubConfig) registerPostgres(fs *flag.FlagSet) {
	fs.StringVar(&c.postgresURL, "postgres-url", "",
		"PostgreSQL `URL` for pub/sub over LISTEN/NOTIFY, as Rails' postgresql adapter: postgres://[user:password@]host:port/db (env GOCABLE_POSTGRES_URL; overrides --cable-config's adapter and url; with adapter: postgresql in cable.yml and no url, DATABASE_URL)")
}

// primaryDatabase reads the primary database of the app's
// config/database.yml in the environment resolve chose; nil when the app
// has no database.yml, or its primary database is not PostgreSQL.
func (c *pubsubConfig) primaryDatabase(lookup func(string) (string, bool)) (*railsconfig.Database, error) {
	root, err := c.appRootDir()
	if err != nil {
		return nil, err
	}
	file := filepath.Join(root, "config", "database.yml")
	if _, err := os.Stat(file); err != nil {
		return nil, nil
	}
	d, err := railsconfig.LoadDatabase(file, c.railsEnv, "primary", lookup)
	if err != nil {
		return nil, err
	}
	if d.Adapter != "postgresql" && d.Adapter != "postgis" {
		return nil, nil
	}
	return d, nil
}

// errPostgresAndRedis is returned when flags ask for both adapters.
var errPostgresAndRedis = errors.New("--postgres-url and --redis-url (or --redis-sentinels) both choose the pub/sub: give one")

// postgresSettings completes s, from cable.yml or empty, for the
// PostgreSQL pub/sub: its URL (s.URL) and channel prefix.
func (c *pubsubConfig) postgresSettings(s *railsconfig.Cable, source string, given map[string]bool, lookup func(string) (string, bool)) (*railsconfig.Cable, string, *logLine, error) {
	env := func(name string) string { v, _ := lookup(name); return v }
	s.Adapter = "postgresql"
	// Rails' adapter takes Active Record's connection: the primary database
	// of config/database.yml, with DATABASE_URL merged as Rails merges it
	// (actioncable/lib/action_cable/subscription_adapter/postgresql.rb,
	// with_subscriptions_connection).
	var primary *railsconfig.Database
	if c.cableConfig != "" && !given["postgres-url"] && s.URL == "" {
		var err error
		if primary, err = c.primaryDatabase(lookup); err != nil {
			return nil, "", nil, fmt.Errorf("%s: %w", source, err)
		}
	}
	switch {
	case given["postgres-url"]:
		s.URL = c.postgresURL
	case s.URL != "":
	case primary != nil:
		s.URL = primary.PostgresURL()
		source += " and config/database.yml (" + primary.Name + ")"
	case env("GOCABLE_POSTGRES_URL") != "":
		s.URL = env("GOCABLE_POSTGRES_URL")
	default:
		s.URL = env("DATABASE_URL")
	}
	if s.URL == "" {
		return nil, "", nil, fmt.Errorf("%s: the postgresql adapter needs a database: give --postgres-url, a url in cable.yml, a postgresql primary database in config/database.yml, or DATABASE_URL", source)
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
