# frozen_string_literal: true

# Writes Rails cookies with Rails' own code, for js-client-tests that need
# a cookie the fixed vectors in testdata/cookies do not have (one that
# expires an hour from now, or expired an hour ago). Nothing here encodes a
# cookie by hand: the cookie is set through ActionDispatch::Cookies (the
# middleware and its CookieJar, with ActiveSupport's KeyGenerator and
# MessageEncryptor / MessageVerifier), as a Rails controller's
# `cookies.encrypted[:user_id] = { value: 42, expires: 1.hour.ago }` does,
# and then read back by a second request, so Rails' own verdict comes with it.
#
# Runs with Debian's ruby-actionpack (6.1) or the actionpack gem.
#
# The app it plays is a `load_defaults 6.1` app with the `cookies_serializer
# :json` initializer that `rails new` generated up to 6.1: SHA1 key
# derivation (1000 iterations), AES-256-GCM, cookies with metadata, the
# default salts. The key generator is given SHA1 explicitly, so a newer
# actionpack writes the same kind of cookie.
#
# secret_key_base comes from the environment variable SECRET_KEY_BASE.
#
#   ruby rails_cookie.rb version
#       prints {"actionpack":"6.1.7.10","globalid":"yes"|"no"}
#   ruby rails_cookie.rb mint JAR NAME VALUE_JSON EXPIRES_IN_SECONDS
#       JAR is encrypted or signed. EXPIRES_IN_SECONDS may be negative (an
#       expiry in the past) or "none". Prints one JSON object shaped like a
#       testdata/cookies vector: rails_version, config, jar, cookie_name,
#       cookie_header (the "name=value" pair a browser sends back),
#       set_cookie (the Set-Cookie header Rails wrote), expires_at, and
#       expected {ok, value} = what a second Rails request reads from that
#       Cookie header (ok false and value null when Rails refuses it).
#   ruby rails_cookie.rb gid APP MODEL ID
#       prints the GlobalID param (to_gid_param) of gid://APP/MODEL/ID, as
#       ActionCable renders a record identifier (needs globalid).

require "base64" # globalid 0.6 calls Base64 without requiring it (Ruby 3.1+)
require "json"
require "time"
require "active_support"
require "active_support/all"
require "active_support/key_generator"
require "active_support/messages/rotation_configuration"
require "action_pack"
require "action_dispatch"
require "action_dispatch/middleware/cookies"
require "rack"
require "rack/mock"

$stdout.sync = true

def usage!
  warn "usage: ruby rails_cookie.rb version | mint JAR NAME VALUE_JSON EXPIRES_IN_SECONDS|none | gid APP MODEL ID"
  exit 2
end

CONFIG = {
  "key_generator_hash_digest" => "SHA1",
  "key_generator_iterations" => 1000,
  "use_authenticated_cookie_encryption" => true,
  "use_cookies_with_metadata" => true,
  "cookies_serializer" => "json",
  "encrypted_cookie_cipher" => nil,
  "signed_cookie_digest" => nil,
  "cookies_digest" => nil,
  "salts" => {
    "signed_cookie_salt" => "signed cookie",
    "encrypted_cookie_salt" => "encrypted cookie",
    "encrypted_signed_cookie_salt" => "signed encrypted cookie",
    "authenticated_encrypted_cookie_salt" => "authenticated encrypted cookie",
  },
  "rotations" => { "encrypted" => [], "signed" => [] },
}.freeze

# The Rack env keys Rails::Application#env_config gives every request.
def app_env(secret_key_base)
  key_generator = ActiveSupport::CachingKeyGenerator.new(
    ActiveSupport::KeyGenerator.new(secret_key_base, iterations: 1000, hash_digest_class: OpenSSL::Digest::SHA1),
  )
  salts = CONFIG["salts"]
  {
    "action_dispatch.secret_key_base" => secret_key_base,
    "action_dispatch.key_generator" => key_generator,
    "action_dispatch.signed_cookie_salt" => salts["signed_cookie_salt"],
    "action_dispatch.encrypted_cookie_salt" => salts["encrypted_cookie_salt"],
    "action_dispatch.encrypted_signed_cookie_salt" => salts["encrypted_signed_cookie_salt"],
    "action_dispatch.authenticated_encrypted_cookie_salt" => salts["authenticated_encrypted_cookie_salt"],
    "action_dispatch.use_authenticated_cookie_encryption" => true,
    "action_dispatch.use_cookies_with_metadata" => true,
    "action_dispatch.cookies_serializer" => :json,
    "action_dispatch.cookies_rotations" => ActiveSupport::Messages::RotationConfiguration.new,
  }
end

def jar_of(request, jar)
  case jar
  when "encrypted" then request.cookie_jar.encrypted
  when "signed" then request.cookie_jar.signed
  else usage!
  end
end

def mint(jar, name, value_json, expires_in)
  secret_key_base = ENV["SECRET_KEY_BASE"].to_s
  abort "rails_cookie.rb: set SECRET_KEY_BASE" if secret_key_base.empty?
  value = JSON.parse(value_json, quirks_mode: true)
  expires_at = expires_in == "none" ? nil : Time.now + Integer(expires_in)

  # The request that sets the cookie, through the middleware as in an app.
  app = lambda do |env|
    options = { value: value }
    options[:expires] = expires_at if expires_at
    jar_of(ActionDispatch::Request.new(env), jar)[name.to_sym] = options
    [200, {}, []]
  end
  env = Rack::MockRequest.env_for("/").merge(app_env(secret_key_base))
  _status, headers, _body = ActionDispatch::Cookies.new(app).call(env)
  set_cookie = headers["Set-Cookie"] || headers["set-cookie"]
  set_cookie = set_cookie.join("\n") if set_cookie.is_a?(Array)
  line = set_cookie.to_s.split("\n").find { |l| l.start_with?("#{name}=") } or abort "rails_cookie.rb: Rails set no #{name} cookie: #{set_cookie.inspect}"
  pair = line.split(";", 2).first

  # A later request that sends the cookie back: what Rails reads.
  env2 = Rack::MockRequest.env_for("/", "HTTP_COOKIE" => pair).merge(app_env(secret_key_base))
  read = jar_of(ActionDispatch::Request.new(env2), jar)[name.to_sym]

  puts JSON.generate(
    "name" => "fresh_#{jar}_#{name}_expires_in_#{expires_in}",
    "rails_version" => ActionPack::VERSION::STRING,
    "generator" => "testdata/e2e-cookies/rails_cookie.rb",
    "config" => CONFIG,
    "jar" => jar,
    "cookie_name" => name,
    "cookie_header_value" => pair.split("=", 2).last,
    "cookie_header" => pair,
    "set_cookie" => line,
    "expires_at" => expires_at&.utc&.iso8601(3),
    "expected" => { "ok" => !read.nil?, "value" => read },
  )
end

def gid(app, model, id)
  require "globalid"
  puts GlobalID.new(URI::GID.build(app: app, model_name: model, model_id: id)).to_param
end

case ARGV[0]
when "version"
  have_gid = begin
    require "globalid"
    true
  rescue LoadError
    false
  end
  puts JSON.generate("actionpack" => ActionPack::VERSION::STRING, "globalid" => have_gid ? "yes" : "no")
when "mint"
  usage! unless ARGV.length == 5
  mint(*ARGV[1..4])
when "gid"
  usage! unless ARGV.length == 4
  gid(*ARGV[1..3])
else
  usage!
end
