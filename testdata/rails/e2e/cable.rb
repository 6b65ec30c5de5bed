# frozen_string_literal: true

# A "Rails process" for the end-to-end tests in js-client-tests: a console,
# a job or a second app server that talks to the cable servers only through
# Rails' own redis subscription adapter. Configuration: see setup.rb
# (CABLE_CONFIG, or REDIS_URL and CHANNEL_PREFIX).
#
# Modes (results on stdout, one line each; logs and errors on stderr):
#
#   ruby cable.rb version
#       prints "actioncable <version>".
#
#   ruby cable.rb broadcast STREAM JSON [JSON...]
#       for each JSON argument, parses it (big integers stay exact Ruby
#       Integers, objects become Hashes) and calls
#       ActionCable.server.broadcast(STREAM, message); prints the payload
#       that was published, as a JSON string.
#
#   ruby cable.rb broadcast_to CHANNEL USER_ID JSON
#       CHANNEL.broadcast_to(User.new(USER_ID), message) for a channel class
#       of that name (say NotificationsChannel), as an app's model callback
#       or job does: Rails names the stream (broadcasting_for: the channel's
#       channel_name, then the user's GlobalID param). Prints the stream
#       name, then the payload published, as a JSON string.
#
#   ruby cable.rb disconnect USER_ID
#       calls ActionCable.server.remote_connections.where(current_user:
#       User.new(USER_ID)).disconnect for a connection class that is
#       identified_by :current_user (the Rails 6.1 form: no reconnect
#       argument). Prints "channel action_cable/<connection identifier>"
#       first.
#
#   ruby cable.rb cookie NAME JSON
#       writes JSON (parsed) into the encrypted cookie NAME with
#       ActionDispatch's cookie jar and prints the pair "NAME=<value>" as a
#       browser sends it back in its Cookie header. Rails is configured as
#       a 6.1 app made by `rails new` (load_defaults 6.1, JSON cookie
#       serializer): secret_key_base from SECRET_KEY_BASE, PBKDF2-HMAC-SHA1
#       key generator (1000 iterations), AES-256-GCM and purpose metadata,
#       the settings of testdata/cookies/rails-6.1-vectors.json. gocable
#       reads it with --load-defaults 6.1 --cookies-serializer json.

require_relative "setup"

def usage!
  warn "usage: ruby cable.rb version | broadcast STREAM JSON... | broadcast_to CHANNEL USER_ID JSON | disconnect USER_ID | cookie NAME JSON"
  exit 2
end

# Connection declares the identifiers of the app's connections.
class Connection < ActionCable::Connection::Base
  identified_by :current_user
end

mode = ARGV.shift or usage!
case mode
when "version"
  puts "actioncable #{ActionCable.version}"

when "broadcast"
  stream = ARGV.shift or usage!
  usage! if ARGV.empty?
  messages = ARGV.map { |arg| JSON.parse(arg) }
  s = E2E.server
  messages.each do |message|
    s.broadcast(stream, message)
    puts JSON.generate(ActiveSupport::JSON.encode(message))
  end

when "broadcast_to"
  name = ARGV.shift or usage!
  user_id = ARGV.shift or usage!
  message = JSON.parse(ARGV.shift || usage!)
  channel = Class.new(ActionCable::Channel::Base)
  Object.const_set(name, channel) # channel_name comes from the class name
  E2E.server # configures ActionCable.server, which broadcast_to uses
  user = User.new(user_id)
  puts channel.broadcasting_for(user)
  channel.broadcast_to(user, message)
  puts JSON.generate(ActiveSupport::JSON.encode(message))

when "disconnect"
  user_id = ARGV.shift or usage!
  s = E2E.server
  s.config.connection_class = -> { Connection }
  remote = s.remote_connections.where(current_user: User.new(user_id))
  puts "channel action_cable/#{remote.connection_identifier}"
  remote.disconnect

when "cookie"
  require "action_dispatch"
  require "action_dispatch/middleware/cookies"
  require "active_support/messages/rotation_configuration"
  name = ARGV.shift or usage!
  value = JSON.parse(ARGV.shift || usage!)
  secret = ENV["SECRET_KEY_BASE"].presence or abort "cable.rb cookie: set SECRET_KEY_BASE"
  generator = ActiveSupport::KeyGenerator.new(secret, iterations: 1000) # SHA1: the only digest of 6.1, the default of 7.x
  env = Rack::MockRequest.env_for("http://127.0.0.1/")
  env.merge!(
    "action_dispatch.key_generator" => ActiveSupport::CachingKeyGenerator.new(generator),
    "action_dispatch.secret_key_base" => secret,
    "action_dispatch.signed_cookie_salt" => "signed cookie",
    "action_dispatch.encrypted_cookie_salt" => "encrypted cookie",
    "action_dispatch.encrypted_signed_cookie_salt" => "signed encrypted cookie",
    "action_dispatch.authenticated_encrypted_cookie_salt" => "authenticated encrypted cookie",
    "action_dispatch.use_authenticated_cookie_encryption" => true,
    "action_dispatch.encrypted_cookie_cipher" => "aes-256-gcm",
    "action_dispatch.use_cookies_with_metadata" => true,
    "action_dispatch.cookies_serializer" => :json,
    "action_dispatch.cookies_rotations" => ActiveSupport::Messages::RotationConfiguration.new,
  )
  jar = ActionDispatch::Request.new(env).cookie_jar
  jar.encrypted[name] = value
  headers = {}
  jar.write(headers)
  set_cookie = Array(headers["Set-Cookie"]).join("\n").split("\n").find { |l| l.start_with?("#{name}=") }
  abort "cable.rb cookie: the jar wrote no #{name} cookie (#{headers.inspect})" unless set_cookie
  puts set_cookie.split(";").first

else
  usage!
end
