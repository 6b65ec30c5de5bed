# frozen_string_literal: true

# Reads cookies written by Go (auth.RailsCookies EncryptedValue/SignedValue)
# with Rails' own code, for auth/write_test.go. Nothing here decodes a
# cookie by hand: each one is read twice.
#
#  1. Through ActionDispatch::Cookies' jar, as a controller's
#     cookies.encrypted[:name] / cookies.signed[:name] does, with the request
#     env that Rails::Application#env_config builds for the given
#     configuration. This is Rails' verdict, rotations and fallbacks
#     included.
#  2. With only the primary ActiveSupport::MessageEncryptor or
#     MessageVerifier, built exactly as EncryptedKeyRotatingCookieJar /
#     SignedKeyRotatingCookieJar#initialize build it (same key, salt,
#     cipher, digest, NullSerializer), without rotations: once with the
#     purpose "cookie.<name>" and once with none. This shows that Go used
#     the primary cipher and key, and whether it wrote the purpose.
#
# Runs with Debian's ruby-actionpack / ruby-activesupport (6.1) or newer
# gems.
#
#   ruby read_go_cookies.rb version
#       prints {"activesupport":"6.1.7.10","message_pack":false}
#   ruby read_go_cookies.rb read < cases.json
#       cases.json: {"secret_key_base":"...","cases":[{"id":"...",
#       "config":{"key_digest":"SHA1"|"SHA256","legacy_encryption":bool,
#       "cipher":"aes-256-gcm"|null,"signed_digest":"SHA1"|null,
#       "serializer":"json"|"marshal"|"hybrid","with_metadata":bool},
#       "jar":"encrypted"|"signed","name":"user_id","cookie":"%-escaped value"}]}
#       prints one JSON array of {"id","jar_ok","jar_value",
#       "primary_with_purpose","primary_without_purpose","error"}.

require "json"
require "time"
require "active_support"
require "active_support/all"
require "active_support/key_generator"
require "active_support/message_encryptor"
require "active_support/message_verifier"
require "active_support/messages/rotation_configuration"
require "action_dispatch"
require "action_dispatch/middleware/cookies"
require "rack"
require "rack/mock"

SALTS = {
  signed: "signed cookie",
  encrypted: "encrypted cookie",
  encrypted_signed: "signed encrypted cookie",
  authenticated: "authenticated encrypted cookie",
}.freeze

# ActiveSupport 7.0's KeyGenerator#generate_key, for an older ActiveSupport
# whose KeyGenerator always uses SHA1 (activesupport/lib/active_support/key_generator.rb,
# v7.0: OpenSSL::PKCS5.pbkdf2_hmac with hash_digest_class).
class KeyGeneratorWithDigest
  def initialize(secret, iterations:, hash_digest_class:)
    @secret, @iterations, @hash_digest_class = secret, iterations, hash_digest_class
  end

  def generate_key(salt, key_size = 64)
    OpenSSL::PKCS5.pbkdf2_hmac(@secret, salt, @iterations, key_size, @hash_digest_class.new)
  end
end

def key_generator(secret_key_base, config)
  digest = OpenSSL::Digest.const_get(config.fetch("key_digest"))
  generator = if ActiveSupport::KeyGenerator.respond_to?(:hash_digest_class) || digest == OpenSSL::Digest::SHA1
    ActiveSupport::KeyGenerator.new(secret_key_base, iterations: 1000, hash_digest_class: digest)
  else
    KeyGeneratorWithDigest.new(secret_key_base, iterations: 1000, hash_digest_class: digest)
  end
  ActiveSupport::CachingKeyGenerator.new(generator)
end

# The Rack env keys Rails::Application#env_config gives every request.
def app_env(secret_key_base, config)
  {
    "action_dispatch.secret_key_base" => secret_key_base,
    "action_dispatch.key_generator" => key_generator(secret_key_base, config),
    "action_dispatch.signed_cookie_salt" => SALTS[:signed],
    "action_dispatch.encrypted_cookie_salt" => SALTS[:encrypted],
    "action_dispatch.encrypted_signed_cookie_salt" => SALTS[:encrypted_signed],
    "action_dispatch.authenticated_encrypted_cookie_salt" => SALTS[:authenticated],
    "action_dispatch.use_authenticated_cookie_encryption" => !config["legacy_encryption"],
    "action_dispatch.encrypted_cookie_cipher" => config["cipher"],
    "action_dispatch.signed_cookie_digest" => config["signed_digest"],
    "action_dispatch.use_cookies_with_metadata" => config["with_metadata"],
    "action_dispatch.cookies_serializer" => config["serializer"]&.to_sym,
    "action_dispatch.cookies_rotations" => ActiveSupport::Messages::RotationConfiguration.new,
  }
end

NULL = ActiveSupport::MessageEncryptor::NullSerializer

# The primary encryptor or verifier of the jar, without rotations.
def primary(secret_key_base, config, jar)
  kg = key_generator(secret_key_base, config)
  if jar == "signed"
    ActiveSupport::MessageVerifier.new(kg.generate_key(SALTS[:signed]), digest: config["signed_digest"] || "SHA1", serializer: NULL)
  elsif config["legacy_encryption"]
    secret = kg.generate_key(SALTS[:encrypted], ActiveSupport::MessageEncryptor.key_len("aes-256-cbc"))
    sign_secret = kg.generate_key(SALTS[:encrypted_signed])
    ActiveSupport::MessageEncryptor.new(secret, sign_secret, cipher: "aes-256-cbc", serializer: NULL)
  else
    cipher = config["cipher"] || "aes-256-gcm"
    secret = kg.generate_key(SALTS[:authenticated], ActiveSupport::MessageEncryptor.key_len(cipher))
    ActiveSupport::MessageEncryptor.new(secret, cipher: cipher, serializer: NULL)
  end
end

def open_primary(codec, jar, value, purpose)
  if jar == "signed"
    codec.verified(value, purpose: purpose)
  else
    codec.decrypt_and_verify(value, purpose: purpose)
  end
rescue ActiveSupport::MessageEncryptor::InvalidMessage, ActiveSupport::MessageVerifier::InvalidSignature
  nil
end

def read_case(secret_key_base, c)
  config, jar, name = c.fetch("config"), c.fetch("jar"), c.fetch("name")
  env = Rack::MockRequest.env_for("/", "HTTP_COOKIE" => "#{name}=#{c.fetch("cookie")}").merge(app_env(secret_key_base, config))
  request = ActionDispatch::Request.new(env)
  jar_obj = jar == "signed" ? request.cookie_jar.signed : request.cookie_jar.encrypted
  value = jar_obj[name.to_sym]

  codec = primary(secret_key_base, config, jar)
  raw = Rack::Utils.unescape(c.fetch("cookie"))
  {
    "id" => c["id"],
    "jar_ok" => !value.nil?,
    "jar_value" => value,
    "primary_with_purpose" => !open_primary(codec, jar, raw, "cookie.#{name}").nil?,
    "primary_without_purpose" => !open_primary(codec, jar, raw, nil).nil?,
  }
rescue StandardError => e
  { "id" => c["id"], "error" => "#{e.class}: #{e.message}" }
end

case ARGV[0]
when "version"
  puts JSON.generate(
    "activesupport" => ActiveSupport::VERSION::STRING,
    "message_pack" => Gem::Version.new(ActiveSupport::VERSION::STRING) >= Gem::Version.new("7.1"),
  )
when "read"
  input = JSON.parse($stdin.read)
  puts JSON.generate(input.fetch("cases").map { |c| read_case(input.fetch("secret_key_base"), c) })
else
  warn "usage: ruby read_go_cookies.rb version | read < cases.json"
  exit 2
end
