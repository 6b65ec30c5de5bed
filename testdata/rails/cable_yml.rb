# frozen_string_literal: true

# Prints, as one JSON object, the settings that Rails reads from one
# environment of a config/cable.yml, loading it exactly as a Rails app does:
# ActiveSupport::ConfigurationFile (ERB, then YAML with aliases), the
# environment merged over "shared" as Rails.application.config_for does
# (railties/lib/rails/application.rb), with indifferent access
# (actioncable/lib/action_cable/engine.rb). Go tests compare gocable's own
# cable.yml reader with it.
#
#   ruby cable_yml.rb path/to/cable.yml ENV

require "json"
require "openssl"
require "active_support"
require "active_support/configuration_file"
require "active_support/core_ext/hash"

path, env = ARGV
abort "usage: ruby cable_yml.rb path/to/cable.yml ENV" unless path && env

all = ActiveSupport::ConfigurationFile.parse(path).deep_symbolize_keys
config, shared = all[env.to_sym], all[:shared]
if shared
  config = {} if config.nil? && shared.is_a?(Hash)
  config = shared.deep_merge(config) if config.is_a?(Hash) && shared.is_a?(Hash)
end
abort "no #{env} environment" if config.nil?
cable = config.to_h.with_indifferent_access

def str(value)
  value&.to_s
end

sentinels = cable[:sentinels]&.map do |s|
  s.is_a?(Hash) ? "#{s[:host]}:#{s[:port] || 26379}" : s.to_s
end

puts JSON.generate(
  adapter: str(cable.fetch("adapter") { "redis" }),
  url: str(cable[:url]),
  channel_prefix: str(cable[:channel_prefix]),
  id: str(cable[:id]),
  db: cable[:db]&.to_i,
  verify_mode: cable.dig(:ssl_params, :verify_mode),
  sentinels: sentinels,
  sentinel_password: str(cable[:sentinel_password]),
)
