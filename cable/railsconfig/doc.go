// Package railsconfig reads a Rails app's config/cable.yml and
// config/database.yml as Rails reads them, so that a Go server can share
// the app's Redis or database settings:
//
//	c, err := railsconfig.LoadCable("config/cable.yml", "production", nil)
//	// c.Adapter "redis", c.URL from ENV.fetch("REDIS_URL") { ... }, c.ChannelPrefix ...
//	d, err := railsconfig.LoadDatabase("config/database.yml", "production", "cable", nil)
//	// d.Adapter "sqlite3", d.Path(appRoot), or CABLE_DATABASE_URL's settings ...
//
// database.yml is read with the same ERB and YAML rules as cable.yml, then
// as ActiveRecord::DatabaseConfigurations reads it: see LoadDatabase.
//
// Reading follows ActiveSupport::ConfigurationFile
// (activesupport/lib/active_support/configuration_file.rb) and
// Rails.application.config_for (railties/lib/rails/application.rb):
//
//  1. ERB. The file is rendered as ERB without a trim mode. Only the forms
//     that cable.yml files use are understood: <%= %> output tags whose
//     expression is made of ENV["X"], ENV.fetch("X"), ENV.fetch("X",
//     default), ENV.fetch("X") { default }, string and integer literals,
//     nil, || and OpenSSL::SSL::VERIFY_NONE / VERIFY_PEER; <%# comments %>;
//     and <%% for a literal "<%". Any other Ruby is an error, never a guess.
//  2. YAML. The text is parsed by go.yaml.in/yaml/v3, a port of libyaml, the
//     parser inside Ruby's Psych; anchors, aliases and merge keys (<<) are
//     resolved as Psych resolves them. Plain scalars are then typed by
//     Psych's YAML 1.1 rules, not the library's YAML 1.2 ones: yes/no/on/off
//     and any-case true/null are booleans and nil, ":url" is the symbol
//     url, 0123 is octal, 1:30 sexagesimal (5400), 1_000 and 1,000 integers,
//     1e5 a string. Tags, several documents, directives, complex keys and
//     duplicate keys are errors.
//  3. The environment. The env section is deep-merged over "shared", as
//     config_for does; unlike Rails, which falls back to a Redis on
//     localhost, a missing section is an error.
//  4. The settings. Keys are looked up as with_indifferent_access does;
//     values are read as Ruby's to_s of what Psych made of them. What
//     gocable does not use is listed in Cable.Ignored.
//
// Errors start with "railsconfig: ", then the file name, then the line
// where there is one. LoadCable and ParseCable keep no state: they may be
// called concurrently.
//
// Every compatibility rule is checked against Ruby itself by the tests
// (testdata/rails/cable_yml.rb, testdata/rails/psych_load.rb).
package railsconfig
