# frozen_string_literal: true

# Prints, as one JSON object of strings, the configuration that ActiveRecord
# resolves for one named database of one environment of a
# config/database.yml: ActiveSupport::ConfigurationFile (ERB, then YAML),
# then ActiveRecord::DatabaseConfigurations (the two- and three-tier forms,
# url keys, NAME_DATABASE_URL and DATABASE_URL merged for the current
# environment). Values are to_s; mappings and lists are left out. Go tests
# compare railsconfig.LoadDatabase with it.
#
#   RAILS_ENV=production ruby database_yml.rb path/to/database.yml production cable

require "json"
require "active_support"
require "active_support/configuration_file"
require "active_record"
require "active_record/database_configurations"

path, env, name = ARGV
abort "usage: ruby database_yml.rb path/to/database.yml ENV NAME" unless path && env && name

configs = ActiveRecord::DatabaseConfigurations.new(ActiveSupport::ConfigurationFile.parse(path))
config = configs.configs_for(env_name: env, name: name)
abort "no #{name} database in #{env}" unless config

out = {}
config.configuration_hash.each do |key, value|
  next if value.nil? || value.is_a?(Hash) || value.is_a?(Array)
  out[key.to_s] = value.to_s
end
puts JSON.generate(out.sort.to_h)
