package railsconfig_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/gocable/gocable/cable/railsconfig"
)

// The cable.yml that `rails new` writes, read for production with REDIS_URL
// set: ERB, then YAML, then the environment's section.
func ExampleParseCable() {
	src := []byte(`development:
  adapter: async

test:
  adapter: test

production:
  adapter: redis
  url: <%= ENV.fetch("REDIS_URL") { "redis://localhost:6379/1" } %>
  channel_prefix: myapp_production
`)
	env := map[string]string{"REDIS_URL": "redis://cache.internal:6379/7"}
	lookupEnv := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	c, err := railsconfig.ParseCable("config/cable.yml", src, "production", lookupEnv)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Adapter, c.URL, *c.ChannelPrefix)

	c, err = railsconfig.ParseCable("config/cable.yml", src, "development", lookupEnv)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Adapter, c.URL == "", c.ChannelPrefix == nil)

	_, err = railsconfig.ParseCable("config/cable.yml", src, "staging", lookupEnv)
	fmt.Println(err)
	// Output:
	// redis redis://cache.internal:6379/7 myapp_production
	// async true true
	// railsconfig: config/cable.yml: no "staging" environment (found: development, test, production)
}

// Anchors, merge keys and Psych's YAML 1.1 types, as a Rails app reads them.
func ExampleLoadCable() {
	path := filepath.Join("..", "..", "testdata", "rails", "cable.anchors.yml")
	c, err := railsconfig.LoadCable(path, "production", func(string) (string, bool) { return "", false })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Adapter, c.URL, *c.ID, *c.DB)
	// Output:
	// redis redis://localhost:6379/1 myapp-cable 3
}
