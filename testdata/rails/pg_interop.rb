# frozen_string_literal: true

# Drives Rails' own ActionCable postgresql subscription adapter
# (actioncable/lib/action_cable/subscription_adapter/postgresql.rb) so that Go
# tests can check that gocable's pgpubsub.PubSub is wire-compatible with it.
# The adapter takes its connections from Active Record, as in a Rails app. It
# runs with the Debian packages ruby, ruby-actioncable, ruby-activesupport,
# ruby-activerecord and ruby-pg (ruby-globalid is optional), or with the gems
# of the same names.
#
# Configuration comes from the environment, as a Rails app's cable.yml and
# database.yml do:
#   DATABASE_URL    the PostgreSQL URL Active Record connects to (required)
#   CHANNEL_PREFIX  channel_prefix; unset means none (nil), and an empty
#                   value is an empty prefix
#
# Modes (one line of output per item, on stdout; logs go to stderr):
#   ruby pg_interop.rb version
#       prints "actioncable <version>", "pg <version>" and "globalid yes|no".
#   ruby pg_interop.rb broadcast STREAM
#       calls ActionCable.server.broadcast(STREAM, message) for each of a
#       fixed list of messages and prints, for each, the payload it sent,
#       JSON-encoded as a string.
#   ruby pg_interop.rb subscribe STREAM COUNT
#       subscribes through the adapter, prints "subscribed" when LISTEN has
#       run, then prints the first COUNT payloads received, each JSON-encoded
#       as a string, and exits.
#   ruby pg_interop.rb disconnect USER_ID TENANT
#       calls ActionCable.server.remote_connections.where(current_user:,
#       tenant:).disconnect for a connection class identified_by
#       :current_user, :tenant; current_user is a GlobalID-identified User
#       (app "myapp") when the globalid library is available, else the
#       string "user-USER_ID". It prints "channel <internal channel>" first.
#   ruby pg_interop.rb too_large STREAM
#       broadcasts a message of 9,000 bytes and prints the class and message
#       of the error Rails raises.

require "base64" # globalid 0.6 calls Base64 without requiring it (Ruby 3.1+)
require "json"
require "logger"
require "timeout"
require "pg"
require "active_record"
require "action_cable"
require "action_cable/subscription_adapter/postgresql"
require "active_support/core_ext/hash/indifferent_access"

begin
  require "globalid"
  HAVE_GLOBALID = true
rescue LoadError
  HAVE_GLOBALID = false
end

$stdout.sync = true

def usage!
  warn "usage: ruby pg_interop.rb version | broadcast STREAM | subscribe STREAM COUNT | disconnect USER_ID TENANT | too_large STREAM"
  exit 2
end

def server
  url = ENV.fetch("DATABASE_URL") { abort "pg_interop.rb: DATABASE_URL is not set" }
  ActiveRecord::Base.establish_connection(url)
  ActiveRecord::Base.logger = Logger.new($stderr, level: Logger::WARN)
  cable = { adapter: "postgresql" }
  cable[:channel_prefix] = ENV["CHANNEL_PREFIX"] if ENV.key?("CHANNEL_PREFIX")
  s = ActionCable.server
  # As a Rails app loads cable.yml: with indifferent access
  # (actioncable/lib/action_cable/engine.rb).
  s.config.cable = cable.with_indifferent_access
  s.config.logger = Logger.new($stderr, level: Logger::WARN)
  s
end

# The messages broadcast in "broadcast" mode, covering the JSON encoder's
# escaping and the adapter's SQL quoting (a quote, a backslash).
MESSAGES = [
  "hi<>",
  { a: 1, b: [true, nil] },
  { body: "caf\u00e9 \u2603 \u{1F600} \u2028 it's a \\ back'slash", html: "<script>&amp;</script>", n: 12_345_678_901_234_567_890 },
  [1, "two", { three: 3 }],
  nil,
  "",
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
  puts "pg #{PG::VERSION}"
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

when "too_large"
  stream = ARGV.shift or usage!
  begin
    server.broadcast(stream, { body: "x" * 9000 })
    puts "no error"
  rescue StandardError => e
    puts "#{e.class}: #{e.message.lines.first.strip}"
  end

else
  usage!
end
