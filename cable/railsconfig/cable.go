package railsconfig

// This file reads the settings of one environment of a Rails
// config/cable.yml, after erb.go rendered it and yaml.go parsed it.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Cable is what gocable uses from one environment of cable.yml. As in Rails,
// keys may be written as symbols (":url") too; a key given as null counts as
// missing, and its field keeps its zero value.
type Cable struct {
	// Adapter is the subscription adapter: "redis" when missing, as
	// ActionCable defaults it (actioncable/lib/action_cable/server/
	// configuration.rb, pubsub_adapter).
	Adapter string
	// URL is the Redis URL; "" when missing.
	URL string
	// ChannelPrefix is channel_prefix; nil when missing or null, while ""
	// is a prefix (actioncable/lib/action_cable/subscription_adapter/
	// channel_prefix.rb).
	ChannelPrefix *string
	// ID is "id", the Redis client name; nil when missing.
	ID *string

	// Host, Path, Username, Password, Port, DB and SSL are the connection
	// options that redis-rb takes besides url, which override the URL's
	// parts (redis-rb lib/redis/client.rb, _parse_options); each is nil
	// when missing.
	Host, Path, Username, Password *string
	Port, DB                       *int
	SSL                            *bool
	// SSLVerifyNone is true for ssl_params: {verify_mode:
	// OpenSSL::SSL::VERIFY_NONE}; false otherwise.
	SSLVerifyNone bool

	// Sentinels holds "sentinels", given as a list of {host:, port:}
	// mappings or of "host:port" strings, as "host:port" strings (port
	// 26379 when missing); nil when missing.
	Sentinels []string
	// MasterName is "name", the Sentinel master name; "" when missing
	// (redis-rb then takes the URL's host).
	MasterName string
	// SentinelUsername and SentinelPassword authenticate to the
	// Sentinels: sentinel_username and sentinel_password, or the
	// username and password of a sentinel's mapping; "" when missing.
	SentinelUsername string
	SentinelPassword string

	// SolidCable holds the settings of the solid_cable adapter; see
	// SolidCable. Its fields are nil when missing.
	SolidCable SolidCable

	// Ignored lists, in file order, the keys that gocable does not use,
	// such as reconnect_attempts or driver, for a log line; nil when none.
	Ignored []string
}

// LoadCable reads the settings of environment env from the cable.yml at
// path, as Rails reads config/cable.yml: the file is rendered as ERB with
// lookupEnv as the process environment (nil means os.LookupEnv), parsed as
// YAML with Psych's rules, and env's section is deep-merged over "shared".
// Errors start with "railsconfig: " and the file's path, and name the line
// where there is one.
func LoadCable(path, env string, lookupEnv func(string) (string, bool)) (*Cable, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("railsconfig: %w", err)
	}
	return ParseCable(path, src, env, lookupEnv)
}

// ParseCable is LoadCable on the contents src of a file; name stands for
// the file in errors.
func ParseCable(name string, src []byte, env string, lookupEnv func(string) (string, bool)) (*Cable, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	text, err := renderERB(string(src), lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("railsconfig: %s: %w", name, err)
	}
	root, err := parseYAML(text)
	if err != nil {
		return nil, fmt.Errorf("railsconfig: %s: %w", name, err)
	}
	s, err := selectEnv(root, env)
	if err != nil {
		return nil, fmt.Errorf("railsconfig: %s: %w", name, err)
	}
	return s, nil
}

// selectEnv extracts environment env as Rails' config_for does
// (railties/lib/rails/application.rb): the env section deep-merged over
// the "shared" section, if any. Unlike Rails, which then falls back to a
// Redis on localhost, a missing section is an error.
func selectEnv(root *yamlNode, env string) (*Cable, error) {
	if root == nil || root.isNull() {
		return nil, errors.New("the file is empty")
	}
	if root.kind != mapNode {
		return nil, fmt.Errorf("line %d: the top level is not a mapping of environments", root.line)
	}
	section, shared := root.get(env), root.get("shared")
	if section != nil && section.isNull() {
		section = nil
	}
	if shared != nil && shared.isNull() {
		shared = nil
	}
	switch {
	case section == nil && shared == nil:
		return nil, fmt.Errorf("no %q environment (found: %s)", env, strings.Join(root.keys, ", "))
	case section != nil && !section.isNull() && section.kind != mapNode:
		return nil, fmt.Errorf("line %d: environment %q is not a mapping", section.line, env)
	case shared != nil && !shared.isNull() && shared.kind != mapNode:
		return nil, fmt.Errorf("line %d: \"shared\" is not a mapping", shared.line)
	}
	m := deepMerge(shared, section)
	if m == nil {
		m = &yamlNode{kind: mapNode}
	}
	return settingsFrom(m)
}

// deepMerge returns b deep-merged over a, as ActiveSupport's deep_merge:
// mappings merge key by key, anything else in b (null included) replaces a.
// A nil a or b is missing.
func deepMerge(a, b *yamlNode) *yamlNode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if a.kind != mapNode || b.kind != mapNode {
		return b
	}
	out := &yamlNode{kind: mapNode, line: b.line}
	for i, k := range a.keys {
		out.set(k, a.vals[i])
	}
	for i, k := range b.keys {
		out.set(k, deepMerge(out.get(k), b.vals[i]))
	}
	return out
}

// settingsFrom reads the keys of one environment.
func settingsFrom(m *yamlNode) (*Cable, error) {
	s := &Cable{Adapter: "redis"}
	for i, key := range m.keys {
		v := m.vals[i]
		if v.isNull() {
			continue // as Ruby's nil: the default applies
		}
		var err error
		switch key {
		case "adapter":
			s.Adapter, err = v.str(key)
		case "url":
			s.URL, err = v.str(key)
		case "channel_prefix":
			s.ChannelPrefix, err = v.strPtr(key)
		case "id":
			s.ID, err = v.strPtr(key)
		case "host":
			s.Host, err = v.strPtr(key)
		case "path":
			s.Path, err = v.strPtr(key)
		case "username":
			s.Username, err = v.strPtr(key)
		case "password":
			s.Password, err = v.strPtr(key)
		case "port":
			s.Port, err = v.intPtr(key)
		case "db":
			s.DB, err = v.intPtr(key)
		case "ssl":
			var b bool
			b, err = v.boolean(key)
			s.SSL = &b
		case "ssl_params":
			err = s.readSSLParams(v)
		case "sentinels":
			err = s.readSentinels(v)
		case "name":
			s.MasterName, err = v.str(key)
		case "role":
			var role string
			role, err = v.str(key)
			if err == nil && role != "master" {
				err = fmt.Errorf("line %d: role %q: gocable subscribes through the Sentinel master only", v.line, role)
			}
		case "connects_to":
			err = s.SolidCable.readConnectsTo(v)
		case "polling_interval":
			s.SolidCable.PollingInterval, err = v.duration(key)
		case "message_retention":
			s.SolidCable.MessageRetention, err = v.duration(key)
		case "autotrim":
			s.SolidCable.Autotrim, err = v.boolPtr(key)
		case "silence_polling":
			s.SolidCable.SilencePolling, err = v.boolPtr(key)
		case "use_skip_locked":
			s.SolidCable.UseSkipLocked, err = v.boolPtr(key)
		case "trim_batch_size":
			s.SolidCable.TrimBatchSize, err = v.intPtr(key)
		case "sentinel_username":
			s.SentinelUsername, err = v.str(key)
		case "sentinel_password":
			s.SentinelPassword, err = v.str(key)
		default:
			s.Ignored = append(s.Ignored, key)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readSSLParams reads ssl_params, of which gocable understands verify_mode
// (OpenSSL::SSL::VERIFY_NONE is 0, VERIFY_PEER 1), as Heroku's Redis
// instructions use it.
func (s *Cable) readSSLParams(v *yamlNode) error {
	if v.kind != mapNode {
		return fmt.Errorf("line %d: ssl_params is not a mapping", v.line)
	}
	for i, k := range v.keys {
		switch k {
		case "verify_mode":
			n, err := v.vals[i].intPtr("ssl_params.verify_mode")
			if err != nil {
				return err
			}
			switch *n {
			case 0:
				s.SSLVerifyNone = true
			case 1:
			default:
				return fmt.Errorf("line %d: ssl_params.verify_mode %d: want 0 (VERIFY_NONE) or 1 (VERIFY_PEER)", v.vals[i].line, *n)
			}
		default:
			return fmt.Errorf("line %d: ssl_params.%s is not supported by gocable (only verify_mode is)", v.vals[i].line, k)
		}
	}
	return nil
}

// readSentinels reads a list of {host:, port:} mappings or "host:port"
// strings, as redis-rb takes them.
func (s *Cable) readSentinels(v *yamlNode) error {
	if v.kind != seqNode {
		return fmt.Errorf("line %d: sentinels is not a list", v.line)
	}
	for _, item := range v.items {
		switch item.kind {
		case scalarNode:
			addr, err := item.str("sentinels")
			if err != nil {
				return err
			}
			s.Sentinels = append(s.Sentinels, addr)
		case mapNode:
			host, port := "", 26379
			for i, k := range item.keys {
				var err error
				switch k {
				case "host":
					host, err = item.vals[i].str("sentinels.host")
				case "port":
					var p *int
					p, err = item.vals[i].intPtr("sentinels.port")
					if p != nil {
						port = *p
					}
				case "password":
					s.SentinelPassword, err = item.vals[i].str("sentinels.password")
				case "username":
					s.SentinelUsername, err = item.vals[i].str("sentinels.username")
				default:
					err = fmt.Errorf("line %d: sentinels.%s is not supported by gocable", item.vals[i].line, k)
				}
				if err != nil {
					return err
				}
			}
			if host == "" {
				return fmt.Errorf("line %d: a sentinel has no host", item.line)
			}
			s.Sentinels = append(s.Sentinels, host+":"+strconv.Itoa(port))
		default:
			return fmt.Errorf("line %d: a sentinel is neither host:port nor a mapping", item.line)
		}
	}
	return nil
}
