package runner

import (
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/gocable/gocable/cable/solidcable"
)

// registerSolidCable defines the flags of the solid_cable adapter.
func (c *pubsubConfig) registerSolidCable(fs *flag.FlagSet) {
	fs.StringVar(&c.appRoot, "app-root", "",
		"the Rails app's root `directory`, for adapter solid_cable: its config/database.yml names the cable database, and SQLite paths are relative to it (default: the parent of --cable-config's directory)")
}

// appRootDir is the Rails app's root: --app-root, else the parent of
// --cable-config's directory (config/cable.yml's app).
func (c *pubsubConfig) appRootDir() (string, error) {
	if c.appRoot != "" {
		return c.appRoot, nil
	}
	abs, err := filepath.Abs(c.cableConfig)
	if err != nil {
		return "", err
	}
	return filepath.Dir(filepath.Dir(abs)), nil
}

// solidCableOverrides applies --channel-prefix and CABLE_CHANNEL_PREFIX to
// a solid_cable configuration, as resolve does for Redis.
func (c *pubsubConfig) solidCableOverrides(s *railsconfig.Cable, given map[string]bool, lookup func(string) (string, bool)) error {
	if given["channel-prefix"] {
		s.ChannelPrefix = &c.channelPrefix
	} else if s.ChannelPrefix == nil {
		if v, ok := lookup("CABLE_CHANNEL_PREFIX"); ok {
			s.ChannelPrefix = &v
		}
	}
	if given["redis-url"] || given["redis-sentinels"] {
		return fmt.Errorf("%s selects adapter solid_cable: --redis-url and --redis-sentinels do not apply (choose another --env, or drop --cable-config)", c.cableConfig)
	}
	return nil
}

// solidCable builds the Solid Cable pub/sub of a cable.yml whose adapter is
// solid_cable: the database is the connects_to writing database (primary
// without connects_to) of the app's config/database.yml, in the same
// environment, with Rails' URL overrides from the environment
// (CABLE_DATABASE_URL, DATABASE_URL for primary).
func (c *pubsubConfig) solidCable(s *railsconfig.Cable, source string, logger *slog.Logger) (cable.PubSub, func() string, func() error, error) {
	root, err := c.appRootDir()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	dbFile := filepath.Join(root, "config", "database.yml")
	sc := s.SolidCable
	dbc, err := railsconfig.LoadDatabase(dbFile, c.railsEnv, sc.DatabaseName(), c.lookupEnv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s, adapter solid_cable (set --app-root to the Rails app's directory): %w", source, err)
	}
	db, dialect, err := solidcable.Open(dbc, root)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	ps, err := solidcable.New(solidcable.Config{
		DB: db, Dialect: dialect, ChannelPrefix: s.ChannelPrefix,
		PollingInterval: sc.Interval(), MessageRetention: sc.Retention(),
		NoAutotrim: !sc.AutotrimOn(), TrimBatchSize: sc.BatchSize(),
		NoSkipLocked: sc.UseSkipLocked != nil && !*sc.UseSkipLocked,
		Logger:       logger,
	})
	if err != nil {
		_ = db.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	prefix := "(none)"
	if s.ChannelPrefix != nil {
		prefix = *s.ChannelPrefix
	}
	where := dbc.Redacted()
	if dialect == solidcable.SQLite {
		where = "sqlite3 " + dbc.Path(root)
	}
	logger.Info("gocable: solid_cable pub/sub", "database", where, "name", dbc.Name, "url_from", dbc.URLSource,
		"polling_interval", sc.Interval(), "message_retention", sc.Retention(), "autotrim", sc.AutotrimOn(),
		"channel_prefix", prefix, "source", source, "database_config", dbFile)
	if len(s.Ignored) > 0 {
		logger.Info("gocable: cable.yml keys not used by gocable", "keys", strings.Join(s.Ignored, ","))
	}
	state := func() string {
		if st := ps.State(); st != solidcable.StateUp {
			return st.String()
		}
		return "ok"
	}
	return ps, state, func() error {
		_ = ps.Close()
		return db.Close()
	}, nil
}
