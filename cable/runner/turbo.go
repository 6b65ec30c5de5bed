package runner

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// turboChannel is the Ruby class name turbo-rails' JavaScript puts in its
// identifiers (<turbo-cable-stream-source channel="Turbo::StreamsChannel">).
const turboChannel = "Turbo::StreamsChannel"

// turboConfig holds the flags of Turbo::StreamsChannel.
//
// The key is, as in turbo-rails, either explicit
// (config.turbo.signed_stream_verifier_key) or derived from the app's
// secret_key_base. The secret_key_base, key digest and iterations default
// to those of cookie auth: the -secret-key-base, -key-digest,
// -load-defaults and -key-iterations flags when they are registered on the
// same flag set, else their environment variables. Secrets are read from
// the environment at install time, never as flag defaults, so -h cannot
// print them.
type turboConfig struct {
	enabled       bool
	secretKeyBase string
	verifierKey   string
	keyDigest     string

	fs *flag.FlagSet // to read cookie auth's flags at install time
}

// register registers -turbo, -turbo-secret-key-base, -turbo-verifier-key
// and -turbo-key-digest on fs.
func (c *turboConfig) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.BoolVar(&c.enabled, "turbo", envBool("GOCABLE_TURBO", false),
		"serve Turbo::StreamsChannel for turbo_stream_from / <turbo-cable-stream-source> (env GOCABLE_TURBO); the key comes from -turbo-verifier-key or the app's secret_key_base")
	fs.StringVar(&c.secretKeyBase, "turbo-secret-key-base", "",
		"secret_key_base to derive Turbo's stream name key from (env GOCABLE_TURBO_SECRET_KEY_BASE); default: -secret-key-base, else env SECRET_KEY_BASE")
	fs.StringVar(&c.verifierKey, "turbo-verifier-key", "",
		"config.turbo.signed_stream_verifier_key, used as it is, or hex:... / base64:... for a binary key (env GOCABLE_TURBO_VERIFIER_KEY); replaces the derived key")
	fs.StringVar(&c.keyDigest, "turbo-key-digest", envString("GOCABLE_TURBO_KEY_DIGEST", ""),
		"key generator digest for Turbo's key: sha1 (load_defaults < 7.0), sha256 (7.0+) or both (env GOCABLE_TURBO_KEY_DIGEST); default: -key-digest, else from -load-defaults, else both")
}

// flagOrEnv returns the value of another flag on the same flag set, or the
// environment variable env when that flag is not registered.
func (c *turboConfig) flagOrEnv(name, env string) string {
	if c.fs != nil {
		if f := c.fs.Lookup(name); f != nil {
			if v := f.Value.String(); v != "" {
				return v
			}
		}
	}
	return os.Getenv(env)
}

// digests returns the key generator digests to derive keys with.
func (c *turboConfig) digests() ([]auth.Digest, error) {
	spec := c.keyDigest
	if spec == "" {
		spec = c.flagOrEnv("key-digest", "RAILS_KEY_DIGEST")
	}
	if spec == "" {
		if ld := c.flagOrEnv("load-defaults", "RAILS_LOAD_DEFAULTS"); ld != "" {
			v, err := strconv.ParseFloat(ld, 64)
			if err != nil {
				return nil, fmt.Errorf("turbo: load defaults %q: not a version", ld)
			}
			// config.load_defaults "7.0" sets key_generator_hash_digest_class
			// to SHA256 (railties/lib/rails/application/configuration.rb).
			if v >= 7.0 {
				return []auth.Digest{auth.SHA256}, nil
			}
			return []auth.Digest{auth.SHA1}, nil
		}
	}
	if spec == "" || strings.EqualFold(spec, "both") {
		// The 7.0+ key first: Generate signs with it.
		return []auth.Digest{auth.SHA256, auth.SHA1}, nil
	}
	d, err := auth.ParseDigest(spec)
	if err != nil {
		return nil, fmt.Errorf("turbo: key digest: %w", err)
	}
	return []auth.Digest{d}, nil
}

// iterations returns the key generator's PBKDF2 iterations.
func (c *turboConfig) iterations() (int, error) {
	s := c.flagOrEnv("key-iterations", "RAILS_KEY_ITERATIONS")
	if s == "" {
		return auth.DefaultIterations, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("turbo: key iterations %q: want a positive integer", s)
	}
	return n, nil
}

// parseVerifierKey reads -turbo-verifier-key: hex:..., base64:... or the
// bytes of the string itself, as Rails uses a string key.
func parseVerifierKey(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "hex:"):
		return hex.DecodeString(strings.TrimPrefix(s, "hex:"))
	case strings.HasPrefix(s, "base64:"):
		return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "base64:"))
	}
	return []byte(s), nil
}

// verifier builds the stream name verifier the flags describe; source
// says where the key came from, for the log.
func (c *turboConfig) verifier() (v *channels.TurboVerifier, source string, err error) {
	if raw := secret(c.verifierKey, "GOCABLE_TURBO_VERIFIER_KEY"); raw != "" {
		key, err := parseVerifierKey(raw)
		if err != nil {
			return nil, "", fmt.Errorf("turbo: verifier key: %w", err)
		}
		if len(key) == 0 {
			return nil, "", errors.New("turbo: verifier key is empty")
		}
		v, err := channels.NewTurboVerifier(key)
		return v, "verifier key", err
	}
	skb := secret(c.secretKeyBase, "GOCABLE_TURBO_SECRET_KEY_BASE")
	if skb == "" {
		skb = c.flagOrEnv("secret-key-base", "SECRET_KEY_BASE")
	}
	if skb == "" {
		return nil, "", errors.New("turbo: needs the Rails app's secret_key_base (env SECRET_KEY_BASE or -turbo-secret-key-base) or -turbo-verifier-key")
	}
	digests, err := c.digests()
	if err != nil {
		return nil, "", err
	}
	iter, err := c.iterations()
	if err != nil {
		return nil, "", err
	}
	var keys [][]byte
	var names []string
	for _, d := range digests {
		k, err := channels.TurboVerifierKey(skb, d, iter)
		if err != nil {
			return nil, "", fmt.Errorf("turbo: %w", err)
		}
		keys = append(keys, k)
		names = append(names, string(d))
	}
	v, err = channels.NewTurboVerifier(keys...)
	return v, "secret_key_base, key digest " + strings.Join(names, "+"), err
}

// install registers Turbo::StreamsChannel on srv when -turbo is set.
func (c *turboConfig) install(srv *cable.Server, logger *slog.Logger) error {
	if !c.enabled {
		return nil
	}
	v, source, err := c.verifier()
	if err != nil {
		return err
	}
	if err := handleChannel(srv, turboChannel, func() cable.Channel {
		return &channels.TurboStreams{Verifier: v, Logger: logger}
	}); err != nil {
		return fmt.Errorf("turbo: %w", err)
	}
	logger.Info("turbo streams enabled", "channel", turboChannel, "key", source)
	return nil
}

// handleChannel is srv.Handle returning an error instead of panicking on
// a name that is already registered.
func handleChannel(srv *cable.Server, name string, newChannel func() cable.Channel) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	srv.Handle(name, newChannel)
	return nil
}
