# frozen_string_literal: true

# Shared by the Ruby processes of the end-to-end tests in js-client-tests
# (cable.rb, a command-line "Rails process", and config.ru, a real ActionCable
# server run by puma). It configures ActionCable.server the way a Rails app
# does, with Rails' own redis subscription adapter
# (actioncable/lib/action_cable/subscription_adapter/redis.rb).
#
# It runs with the Debian packages ruby, ruby-actioncable (which pulls in
# ruby-actionpack and ruby-activesupport), ruby-redis and ruby-globalid;
# config.ru also needs puma. Or with the gems of the same names.
#
# Configuration comes from the environment:
#   CABLE_CONFIG    path of a Rails config/cable.yml; it is read as Rails reads
#                   it (ERB, then YAML, the section of RAILS_ENV, else
#                   RACK_ENV, else development), and wins over the two below
#   REDIS_URL       the Redis URL, when there is no CABLE_CONFIG
#   CHANNEL_PREFIX  channel_prefix, when there is no CABLE_CONFIG; unset means
#                   none (nil), and an empty value is an empty prefix
#   RAILS_LOG_LEVEL level of ActionCable's log (on stderr); default warn
#
# Identification, as the app's connection class declares it: identified_by
# :current_user, where current_user is a User model identified by GlobalID
# with GlobalID.app = "myapp". Its connection identifier is then
# User.new(id).to_gid_param, "Z2lkOi8vbXlhcHAvVXNlci80Mg" for user 42.

require "base64" # globalid 0.6 calls Base64 without requiring it (Ruby 3.1+)
require "json"
require "logger"
require "action_cable"
require "active_support/configuration_file"
require "active_support/core_ext/hash/indifferent_access"
require "active_support/core_ext/object/blank"

begin
  require "globalid"
rescue LoadError => e
  abort "#{$PROGRAM_NAME}: #{e.message}: install globalid (Debian: apt-get install -y ruby-globalid)"
end

$stdout.sync = true
$stderr.sync = true

GlobalID.app = "myapp"

# User is the smallest GlobalID-identifiable model.
class User
  include GlobalID::Identification
  attr_reader :id

  def initialize(id)
    @id = id
  end

  def self.find(id)
    new(id)
  end
end

module E2E
  module_function

  # The Rails environment, as Rails.env picks it.
  def rails_env
    ENV["RAILS_ENV"].presence || ENV["RACK_ENV"].presence || "development"
  end

  # The cable configuration, as the ActionCable engine loads it
  # (actioncable/lib/action_cable/engine.rb: config_for(cable.yml) with
  # indifferent access).
  def cable_config
    if (path = ENV["CABLE_CONFIG"].presence)
      all = ActiveSupport::ConfigurationFile.parse(path) || {}
      section = all[rails_env] or abort "#{$PROGRAM_NAME}: #{path} has no #{rails_env} section"
      return section.to_h.with_indifferent_access
    end
    url = ENV["REDIS_URL"].presence or abort "#{$PROGRAM_NAME}: set CABLE_CONFIG or REDIS_URL"
    cable = { adapter: "redis", url: url }
    cable[:channel_prefix] = ENV["CHANNEL_PREFIX"] if ENV.key?("CHANNEL_PREFIX")
    cable.with_indifferent_access
  end

  # Configures ActionCable.server and returns it.
  def server
    s = ActionCable.server
    s.config.cable = cable_config
    level = ENV["RAILS_LOG_LEVEL"].presence || "warn"
    s.config.logger = Logger.new($stderr, level: level)
    s
  end
end
