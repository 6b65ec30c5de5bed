package railsconfig

// This file reads one named database of a Rails config/database.yml, as
// ActiveRecord::DatabaseConfigurations does
// (activerecord/lib/active_record/database_configurations.rb,
// database_configurations/url_config.rb and connection_url_resolver.rb).

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Database is one database configuration of one environment of
// database.yml, after the URL overrides that Rails applies. The zero value
// is an empty configuration: no adapter, no database.
type Database struct {
	// Env is the Rails environment, Name the configuration's name:
	// "primary" in the two-tier form (production: {adapter: ...}), the key
	// in the three-tier form (production: {primary: {...}, cable: {...}}).
	Env, Name string

	// Adapter is the adapter as Rails resolves it: the adapter key, or the
	// URL's scheme with "-" made "_" and postgres, mysql and sqlite made
	// postgresql, mysql2 and sqlite3 (ActiveRecord.protocol_adapters).
	// "" when missing.
	Adapter string
	// Database is the database name, or the SQLite file path as written
	// (see Path); "" when missing.
	Database string
	// Host, Username, Password and Socket are the keys of the same names;
	// "" when missing.
	Host, Username, Password, Socket string
	// Port is the port; 0 when missing.
	Port int

	// Params holds every other scalar key (encoding, pool, timeout,
	// sslmode, the URL's query parameters, ...) as Ruby's to_s of its
	// value; keys whose value is a mapping or a list (variables,
	// replica settings) are left out. Never nil in a Database returned by
	// this package.
	Params map[string]string

	// URLSource says where a URL came from: "url" for the url key,
	// "CABLE_DATABASE_URL" (for a configuration named cable) or
	// "DATABASE_URL" (for primary) for the environment; "" when the
	// configuration has no URL.
	URLSource string
}

// maxDatabaseFile bounds the size of a database.yml that LoadDatabase reads.
const maxDatabaseFile = 1 << 20

// LoadDatabase reads the configuration named name (such as "cable", or
// "primary") of environment env from the database.yml at path, as Rails
// does: the file is rendered as ERB and parsed with Psych's rules, as
// LoadCable does; an environment whose values are all mappings is in the
// three-tier form (one configuration per name), any other is the two-tier
// form whose one configuration is named "primary"; a url key is parsed and
// its parts override the other keys. Then, as
// DatabaseConfigurations#merge_db_environment_variables does, the variable
// NAME_DATABASE_URL (CABLE_DATABASE_URL for "cable"), or DATABASE_URL for
// "primary", is merged over a configuration that has no url key, and stands
// alone when the file has no such configuration or does not exist.
// lookupEnv is the process environment; nil means os.LookupEnv.
//
// Errors start with "railsconfig: " and the file's path, and say which
// configurations the environment has when name is not one of them.
func LoadDatabase(path, env, name string, lookupEnv func(string) (string, bool)) (*Database, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	src, err := readBounded(path, maxDatabaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		if u, from := databaseURLFromEnv(name, lookupEnv); u != "" {
			return databaseFromURLOnly(path, env, name, u, from)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("railsconfig: %w", err)
	}
	return ParseDatabase(path, src, env, name, lookupEnv)
}

// readBounded reads the file at path, failing when it is larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a configuration file may have", path, fi.Size(), limit)
	}
	return os.ReadFile(path)
}

// ParseDatabase is LoadDatabase on the contents src of a file; file stands
// for the file in errors.
func ParseDatabase(file string, src []byte, env, name string, lookupEnv func(string) (string, bool)) (*Database, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	fail := func(err error) (*Database, error) {
		return nil, fmt.Errorf("railsconfig: %s: %w", file, err)
	}
	text, err := renderERB(string(src), lookupEnv)
	if err != nil {
		return fail(err)
	}
	root, err := parseYAML(text)
	if err != nil {
		return fail(err)
	}
	envURL, envFrom := databaseURLFromEnv(name, lookupEnv)
	var section *yamlNode
	if root != nil && !root.isNull() {
		if root.kind != mapNode {
			return fail(fmt.Errorf("line %d: the top level is not a mapping of environments", root.line))
		}
		section = root.get(env)
	}
	if section == nil || section.isNull() {
		if envURL != "" {
			return databaseFromURLOnly(file, env, name, envURL, envFrom)
		}
		var found []string
		if root != nil {
			found = root.keys
		}
		return fail(fmt.Errorf("no %q environment (found: %s)", env, strings.Join(found, ", ")))
	}

	// The form of the environment (database_configurations.rb,
	// build_configs: config.values.all?(Hash) is the three-tier form).
	var cfg *yamlNode
	switch section.kind {
	case scalarNode:
		// production: postgres://... (build_db_config_from_string).
		if name == "primary" {
			cfg = &yamlNode{kind: mapNode, line: section.line, keys: []string{"url"}, vals: []*yamlNode{section}}
		}
	case mapNode:
		threeTier := len(section.vals) > 0
		for _, v := range section.vals {
			if v.kind != mapNode {
				threeTier = false
			}
		}
		switch {
		case threeTier:
			cfg = section.get(name)
		case name == "primary":
			cfg = section
		}
	default:
		return fail(fmt.Errorf("line %d: environment %q is neither a mapping nor a URL", section.line, env))
	}
	if cfg == nil || cfg.isNull() {
		if envURL != "" {
			return databaseFromURLOnly(file, env, name, envURL, envFrom)
		}
		return fail(fmt.Errorf("line %d: environment %q has no database configuration named %q (found: %s)", section.line, env, name, strings.Join(configNames(section), ", ")))
	}
	if cfg.kind != mapNode {
		return fail(fmt.Errorf("line %d: database configuration %q of %q is not a mapping", cfg.line, name, env))
	}
	d, err := databaseFrom(env, name, cfg)
	if err != nil {
		return fail(err)
	}
	if d.URLSource == "" && envURL != "" {
		if err := d.mergeURL(envURL, envFrom); err != nil {
			return fail(err)
		}
	}
	return d, nil
}

// configNames lists the configuration names of an environment section.
func configNames(section *yamlNode) []string {
	if section.kind != mapNode {
		return []string{"primary"}
	}
	for _, v := range section.vals {
		if v.kind != mapNode {
			return []string{"primary"}
		}
	}
	return section.keys
}

// databaseURLFromEnv is environment_value_for: NAME_DATABASE_URL, then
// DATABASE_URL for primary. An empty value counts as missing.
func databaseURLFromEnv(name string, lookupEnv func(string) (string, bool)) (u, from string) {
	key := strings.ToUpper(name) + "_DATABASE_URL"
	if v, _ := lookupEnv(key); v != "" {
		return v, key
	}
	if name == "primary" {
		if v, _ := lookupEnv("DATABASE_URL"); v != "" {
			return v, "DATABASE_URL"
		}
	}
	return "", ""
}

func databaseFromURLOnly(file, env, name, u, from string) (*Database, error) {
	d := &Database{Env: env, Name: name, Params: map[string]string{}}
	if err := d.mergeURL(u, from); err != nil {
		return nil, fmt.Errorf("railsconfig: %s: %w", file, err)
	}
	return d, nil
}

// databaseFrom reads the keys of one configuration; a url key is merged
// last, over the others, as UrlConfig does.
func databaseFrom(env, name string, m *yamlNode) (*Database, error) {
	d := &Database{Env: env, Name: name, Params: map[string]string{}}
	var rawURL *yamlNode
	for i, key := range m.keys {
		v := m.vals[i]
		if v.isNull() {
			continue
		}
		if key == "url" {
			rawURL = v
			continue
		}
		if v.kind != scalarNode {
			continue // variables:, replica settings and the like
		}
		if key == "port" {
			p, err := v.intPtr(key)
			if err != nil {
				return nil, err
			}
			d.Port = *p
			continue
		}
		s, err := v.str(key)
		if err != nil {
			s = v.value // a float such as checkout_timeout: 1.5 stays as written
		}
		d.set(key, s)
	}
	if rawURL != nil {
		u, err := rawURL.str("url")
		if err != nil {
			return nil, err
		}
		if err := d.mergeURL(u, "url"); err != nil {
			return nil, fmt.Errorf("line %d: %w", rawURL.line, err)
		}
	}
	return d, nil
}

// set stores one setting.
func (d *Database) set(key, s string) {
	switch key {
	case "adapter":
		d.Adapter = s
	case "database":
		d.Database = s
	case "host":
		d.Host = s
	case "username":
		d.Username = s
	case "password":
		d.Password = s
	case "socket":
		d.Socket = s
	default:
		d.Params[key] = s
	}
}

// protocolAdapters is ActiveRecord.protocol_adapters
// (activerecord/lib/active_record.rb).
var protocolAdapters = map[string]string{"postgres": "postgresql", "mysql": "mysql2", "sqlite": "sqlite3"}

// mergeURL merges the parts of database URL u over d's settings, as
// ConnectionUrlResolver#to_hash reads them: the scheme is the adapter,
// "sqlite3:relative/path" is opaque and its rest the database,
// "sqlite3:/abs/path" keeps its leading slash, any other adapter's path
// drops it; the query's parameters are settings too, and win over the
// URL's own parts; blank parts are left out; values are URL-unescaped.
func (d *Database) mergeURL(raw, from string) error {
	if raw == "" {
		return errors.New("database URL cannot be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s is not a database URL: %v", from, err)
	}
	if u.Scheme == "" {
		return fmt.Errorf("%s is not a database URL: it has no scheme such as postgres://", from)
	}
	adapter := strings.ReplaceAll(u.Scheme, "-", "_")
	if a, ok := protocolAdapters[adapter]; ok {
		adapter = a
	}
	parts := map[string]string{"adapter": adapter}
	rawQuery := u.RawQuery
	if u.Opaque != "" {
		parts["database"] = u.Opaque
	} else {
		parts["username"] = u.User.Username()
		parts["password"], _ = u.User.Password()
		parts["host"] = u.Hostname()
		parts["port"] = u.Port()
		if adapter == "sqlite3" {
			parts["database"] = u.Path
		} else {
			parts["database"] = strings.TrimPrefix(u.Path, "/")
		}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("%s: query: %v", from, err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts[k] = q.Get(k)
	}
	for k, v := range parts {
		if v == "" {
			continue // compact_blank
		}
		if k == "port" {
			p, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: port %q is not a number", from, v)
			}
			d.Port = p
			continue
		}
		d.set(k, v)
	}
	d.URLSource = from
	return nil
}

// PostgresURL renders a postgresql configuration as a libpq URL from the
// keys the pg gem takes (host, or a socket directory; port, username,
// password, database, sslmode and the like; schema_search_path as
// search_path), with a 5-second connect_timeout unless one is given.
func (d *Database) PostgresURL() string {
	u := url.URL{Scheme: "postgres", Path: "/" + d.Database}
	q := url.Values{}
	switch {
	case d.Host != "" && d.Host[0] == '/':
		q.Set("host", d.Host) // a socket directory
	case d.Host != "":
		u.Host = d.Host
	}
	if d.Port != 0 {
		if u.Host == "" {
			q.Set("port", strconv.Itoa(d.Port))
		} else {
			u.Host = net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
		}
	}
	if d.Username != "" {
		u.User = url.UserPassword(d.Username, d.Password)
		if d.Password == "" {
			u.User = url.User(d.Username)
		}
	}
	for _, k := range []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name"} {
		if v := d.Params[k]; v != "" {
			q.Set(k, v)
		}
	}
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	if sp := d.Params["schema_search_path"]; sp != "" {
		q.Set("search_path", sp)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Path returns the SQLite database file of d: Database itself when it is
// absolute, ":memory:" or a "file:" URI, else Database joined to appRoot,
// as Rails' sqlite3 adapter expands it against Rails.root
// (activerecord/lib/active_record/connection_adapters/sqlite3_adapter.rb,
// new_client / initialize: File.expand_path(database, Rails.root)).
func (d *Database) Path(appRoot string) string {
	db := d.Database
	if db == "" || db == ":memory:" || strings.HasPrefix(db, "file:") || filepath.IsAbs(db) {
		return db
	}
	return filepath.Join(appRoot, db)
}

// Redacted returns a description of d for logs, without its password:
// adapter, host and port or socket, and database.
func (d *Database) Redacted() string {
	var b strings.Builder
	b.WriteString(d.Adapter)
	b.WriteString(" ")
	switch {
	case d.Socket != "":
		b.WriteString("socket " + d.Socket + " ")
	case d.Host != "":
		b.WriteString(d.Host)
		if d.Port != 0 {
			b.WriteString(":" + strconv.Itoa(d.Port))
		}
		b.WriteString(" ")
	}
	b.WriteString("database " + strconv.Quote(d.Database))
	if d.Username != "" {
		b.WriteString(" user " + strconv.Quote(d.Username))
	}
	return b.String()
}
