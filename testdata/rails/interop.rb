# frozen_string_literal: true

# Drives Rails' own ActionCable redis subscription adapter
# (actioncable/lib/action_cable/subscription_adapter/redis.rb) so that Go
# tests can check that gocable's redispubsub.PubSub is wire-compatible with it.
# It runs with the Debian packages ruby, ruby-actioncable, ruby-activesupport
# and ruby-redis (ruby-globalid is optional), or with the gems of the same
# names.
#
# Configuration comes from the environment, as a Rails app's cable.yml does:
#   REDIS_URL       the Redis URL (required)
#   CHANNEL_PREFIX  channel_prefix; unset means none (nil), and an empty
#                   value is an empty prefix
#
# Modes (one line of output per item, on stdout; logs go to stderr):
#   ruby interop.rb version
#       prints "actioncable <version>" and "globalid yes|no".
#   ruby interop.rb broadcast STREAM
#       calls ActionCable.server.broadcast(STREAM, message) for each of a
#       fixed list of messages and prints, for each, the payload it
#       published, JSON-encoded as a string.
#   ruby interop.rb subscribe STREAM COUNT
#       subscribes through the adapter, prints "subscribed" when Redis
#       acknowledged it, then prints the first COUNT payloads received,
#       each JSON-encoded as a string, and exits.
#   ruby interop.rb disconnect USER_ID TENANT
#       calls ActionCable.server.remote_connections.where(current_user:,
#       tenant:).disconnect (and, on Rails 7.1+, disconnect(reconnect:
#       false) too), for a connection class identified_by :current_user,
#       :tenant; current_user is a GlobalID-identified User when the
#       globalid library is available, else the string "user-USER_ID".
#       It prints "channel <internal channel>" before publishing.

require "base64" # globalid 0.6 calls Base64 without requiring it (Ruby 3.1+)
require "json"
require "logger"
require "timeout"
require "action_cable"
require "active_support/core_ext/hash/indifferent_access"

begin
  require "globalid"
  HAVE_GLOBALID = true
rescue LoadError
  HAVE_GLOBALID = false
end

$stdout.sync = true

def usage!
  warn "usage: ruby interop.rb version | broadcast STREAM | subscribe STREAM COUNT | disconnect USER_ID TENANT"
  exit 2
end

def server
  url = ENV.fetch("REDIS_URL") { abort "interop.rb: REDIS_URL is not set" }
  cable = { adapter: "redis", url: url }
  cable[:channel_prefix] = ENV["CHANNEL_PREFIX"] if ENV.key?("CHANNEL_PREFIX")
  s = ActionCable.server
  # As a Rails app loads cable.yml: with indifferent access
  # (actioncable/lib/action_cable/engine.rb).
  s.config.cable = cable.with_indifferent_access
  s.config.logger = Logger.new($stderr, level: Logger::WARN)
  s
end

# The messages broadcast in "broadcast" mode: what apps pass to
# ActionCable.server.broadcast, covering the JSON encoder's escaping.
MESSAGES = [
  "hi<>",
  { a: 1, b: [true, nil] },
  { type: "disconnect" },
  { body: "caf\u00e9 \u2603 \u{1F600} \u2028", html: "<script>&amp;</script>", n: 12_345_678_901_234_567_890, f: 1.5 },
  [1, "two", { three: 3 }],
  nil,
  42,
  "",
  { "nested" => { "list" => [], "hash" => {} }, :sym => :value },
].freeze

if HAVE_GLOBALID
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
end

# Connection declares the identifiers of the app's connections.
class Connection < ActionCable::Connection::Base
  identified_by :current_user, :tenant
end

mode = ARGV.shift or usage!
case mode
when "version"
  puts "actioncable #{ActionCable.version}"
  puts "globalid #{HAVE_GLOBALID ? 'yes' : 'no'}"

when "broadcast"
  stream = ARGV.shift or usage!
  s = server
  MESSAGES.each do |message|
    s.broadcast(stream, message)
    puts JSON.generate(ActiveSupport::JSON.encode(message))
  end

when "subscribe"
  stream = ARGV.shift or usage!
  count = Integer(ARGV.shift || usage!)
  s = server
  received = Queue.new
  Timeout.timeout(30) do
    s.pubsub.subscribe(stream, ->(payload) { received << payload }, -> { puts "subscribed" })
    count.times { puts JSON.generate(received.pop) }
  end
  s.pubsub.shutdown

when "disconnect"
  user_id = ARGV.shift or usage!
  tenant = ARGV.shift or usage!
  s = server
  s.config.connection_class = -> { Connection }
  user = HAVE_GLOBALID ? User.new(user_id) : "user-#{user_id}"
  remote = s.remote_connections.where(current_user: user, tenant: tenant)
  puts "channel action_cable/#{remote.connection_identifier}"
  remote.disconnect
  # Rails 7.1 added disconnect(reconnect:), which publishes the flag.
  remote.disconnect(reconnect: false) if remote.method(:disconnect).arity != 0

else
  usage!
end
