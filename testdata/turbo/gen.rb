# Generates channels/testdata/turbo/vectors.json: Turbo signed stream names
# made and checked by real ActiveSupport, for channels/turbo_test.go.
#
# Run from the repository root (Debian: apt-get install ruby-activesupport
# ruby-globalid):
#
#   ruby testdata/turbo/gen.rb
#
# The output is deterministic (fixed secrets, fixed expiry times), so a
# re-run must leave the JSON unchanged.
#
# What turbo-rails does, and what this script does the same way
# (hotwired/turbo-rails, main as of 2026-01):
#
# * lib/turbo/engine.rb, initializer "turbo.signed_stream_verifier_key":
#   the key is config.turbo.signed_stream_verifier_key, or else
#   Rails.application.key_generator.generate_key("turbo/signed_stream_verifier_key"),
#   64 bytes. Rails' application key generator is
#   ActiveSupport::KeyGenerator.new(secret_key_base, iterations: 1000)
#   (railties/lib/rails/application.rb), whose PBKDF2 digest is SHA1, or
#   SHA256 with load_defaults 7.0 (key_generator_hash_digest_class).
# * lib/turbo-rails.rb, Turbo.signed_stream_verifier:
#   ActiveSupport::MessageVerifier.new(key, digest: "SHA256", serializer: JSON).
# * app/channels/turbo/streams/stream_name.rb: signed_stream_name signs
#   the streamables joined with ":" (each one's to_gid_param, else to_param);
#   verified_stream_name is the verifier's verified.
# * app/channels/turbo/streams_channel.rb: stream_from the verified name,
#   else reject.
require "base64" # globalid 0.6 calls Base64 without requiring it (Ruby 3.1+)
require "json"
require "openssl"
require "active_support"
require "active_support/core_ext/object"
require "active_support/message_verifier"
require "active_support/key_generator"
require "globalid"

SALT = "turbo/signed_stream_verifier_key"
ITERATIONS = 1000
SECRET = "6f1e4b8a2c9d7e3f5a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7"
OTHER_SECRET = "0123456789abcdef" * 8

GlobalID.app = "myapp"

# A record for to_gid_param, as an ActiveRecord model would be.
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

# The key Rails' application key generator gives for SALT. ActiveSupport
# 7.0+ takes the PBKDF2 digest as hash_digest_class; older releases (like
# Debian's 6.1) only know SHA1, so SHA256 is computed with the call 7.0's
# KeyGenerator#generate_key makes (activesupport/lib/active_support/key_generator.rb:
# OpenSSL::PKCS5.pbkdf2_hmac(secret, salt, iterations, key_size, digest)).
def turbo_key(secret, digest)
  if ActiveSupport::KeyGenerator.respond_to?(:hash_digest_class)
    klass = OpenSSL::Digest.const_get(digest)
    return ActiveSupport::KeyGenerator.new(secret, iterations: ITERATIONS, hash_digest_class: klass).generate_key(SALT)
  end
  if digest == "SHA1"
    ActiveSupport::KeyGenerator.new(secret, iterations: ITERATIONS).generate_key(SALT)
  else
    OpenSSL::PKCS5.pbkdf2_hmac(secret, SALT, ITERATIONS, 64, OpenSSL::Digest.const_get(digest).new)
  end
end

# Turbo.signed_stream_verifier for a key.
def verifier(key, digest: "SHA256")
  ActiveSupport::MessageVerifier.new(key, digest: digest, serializer: JSON)
end

# Turbo::Streams::StreamName#stream_name_from, restated.
def stream_name_from(streamables)
  return streamables.map { |s| stream_name_from(s) }.join(":") if streamables.is_a?(Array)

  streamables.try(:to_gid_param) || streamables.to_param
end

# Streamables as JSON for the Go test: records become {"gid": URI, "id": id},
# the URI as GlobalID escapes the id, and the id as the record has it.
def streamables_json(x)
  case x
  when Array then x.map { |e| streamables_json(e) }
  when User then { "gid" => x.to_global_id.to_s, "id" => x.id.to_s }
  else x
  end
end

# Ruby's verdict: the stream name Turbo::StreamsChannel would stream, or nil
# when it rejects. An exception (ActiveSupport 6.1 raises on some
# malformed envelopes) is a rejection too and is recorded.
def verdict(v, signed)
  [v.verified(signed), nil]
rescue StandardError => e
  [nil, e.class.name]
end

keys = {}
[SECRET, OTHER_SECRET].each do |secret|
  %w[SHA1 SHA256].each { |d| keys[[secret, d]] = turbo_key(secret, d) }
end

out = {
  "generator" => "testdata/turbo/gen.rb",
  "ruby" => RUBY_VERSION,
  "activesupport" => ActiveSupport.version.to_s,
  "salt" => SALT,
  "iterations" => ITERATIONS,
  "keys" => keys.map do |(secret, digest), key|
    { "secret_key_base" => secret, "key_digest" => digest, "key_hex" => key.unpack1("H*") }
  end,
  "names" => [],
  "vectors" => [],
}

# Stream names from streamables, as turbo_stream_from(*streamables) signs them.
user = User.new(1)
[
  ["messages"],
  [user],
  [user, "messages"],
  [user, :comments, 5],
  [[user, "inbox"], "unread"],
  [User.new("alice@example.com"), "messages"],
  [User.new("john doe/+%")],
  ["room", nil, true],
  [],
].each do |streamables|
  name = stream_name_from(streamables)
  out["names"] << {
    "streamables" => streamables_json(streamables.map { |s| s.is_a?(Symbol) ? s.to_s : s }),
    "name" => name,
    "signed" => verifier(keys[[SECRET, "SHA256"]]).generate(name),
  }
end

good = verifier(keys[[SECRET, "SHA256"]])
add = lambda do |id, signed, key_digest: "SHA256", note: nil, verify_with: good, want_from: nil|
  want, raised = verdict(verify_with, signed)
  v = {
    "id" => id,
    "secret_key_base" => SECRET,
    "key_digest" => key_digest,
    "signed" => signed,
    "want" => want,
    "valid" => !want.nil?,
  }
  v["ruby_raised"] = raised if raised
  v["note"] = note if note
  v["want_from"] = want_from if want_from
  out["vectors"] << v
end

# Valid names (verified with the SHA256-derived key, load_defaults >= 7.0).
{
  "plain" => "messages",
  "room" => "chat_lobby",
  "gid" => stream_name_from([user, "messages"]),
  "unicode" => "caf\u00e9 \u2615 \u2028",
  "html" => %(<b class="x">&amp;</b>),
  "controls" => "tab\there\nline\u0001",
  "dashes" => "a--b--c",
  "empty" => "",
  "long" => "x" * 300,
}.each do |id, name|
  add.call("valid_#{id}", good.generate(name))
end

# Valid with the SHA1-derived key (load_defaults < 7.0).
sha1 = verifier(keys[[SECRET, "SHA1"]])
add.call("sha1_key_plain", sha1.generate("messages"), key_digest: "SHA1", verify_with: sha1)
add.call("sha1_key_gid", sha1.generate(stream_name_from([user, "messages"])), key_digest: "SHA1", verify_with: sha1)
# A SHA1-derived name checked with the SHA256-derived key, and the reverse.
add.call("sha1_name_sha256_key", sha1.generate("messages"), note: "signed with the SHA1-derived key")
add.call("sha256_name_sha1_key", good.generate("messages"), key_digest: "SHA1", verify_with: sha1, note: "signed with the SHA256-derived key")

# Tampered names.
base = good.generate("messages")
data, digest = base.split("--")
other = good.generate("secrets")
add.call("tampered_data", "#{data.sub(/^./) { |c| c == "I" ? "J" : "I" }}--#{digest}")
add.call("tampered_digest", "#{data}--#{digest[0..-2]}#{digest[-1] == "0" ? "1" : "0"}")
add.call("swapped_data", "#{other.split("--")[0]}--#{digest}")
add.call("uppercase_digest", "#{data}--#{digest.upcase}")
add.call("truncated_digest", "#{data}--#{digest[0..-3]}")
add.call("no_digest", data)
add.call("empty_digest", "#{data}--")
add.call("no_data", "--#{digest}")
add.call("empty", "")
add.call("extra_separator", "#{data}----#{digest}")
add.call("trailing_segment", "#{base}--junk",
         note: "ActiveSupport < 7.1 splits on every -- and ignores the rest; 7.1+ wants the digest at the end")
add.call("leading_space", " #{base}")
add.call("trailing_newline", "#{base}\n")

# Signed with another secret_key_base, or with another verifier digest.
wrong = verifier(keys[[OTHER_SECRET, "SHA256"]])
add.call("wrong_secret", wrong.generate("messages"), note: "signed with another secret_key_base")
add.call("wrong_verifier_digest", verifier(keys[[SECRET, "SHA256"]], digest: "SHA1").generate("messages"),
         note: "MessageVerifier digest SHA1 instead of turbo-rails' SHA256")
add.call("raw_key_as_secret", verifier(SECRET).generate("messages"),
         note: "signed with the secret_key_base itself instead of the derived key")

# Values turbo-rails never signs but a verifier can hold.
add.call("json_number", good.generate(5))
add.call("json_null", good.generate(nil))
add.call("json_array", good.generate(%w[a b]))
add.call("json_object", good.generate({ "a" => 1 }))

# Metadata envelopes (ActiveSupport 5.2+ wraps messages made with an expiry
# or a purpose; Turbo never passes one and verifies with no purpose).
future = Time.utc(2099, 1, 1)
past = Time.utc(2001, 1, 1)
add.call("envelope_future", good.generate("messages", expires_at: future))
add.call("envelope_expired", good.generate("messages", expires_at: past))
add.call("envelope_purpose", good.generate("messages", purpose: :login))
add.call("envelope_purpose_future", good.generate("messages", expires_at: future, purpose: "x"))
# The envelope ActiveSupport 7.1+ writes with use_message_serializer_for_metadata
# ({"_rails":{"data":...,"exp":...}}, messages/metadata.rb). These bytes
# are real MessageVerifier output; the verdict is 7.1+'s, by reading
# extract_from_metadata_envelope, since 6.1 does not know this form.
modern = lambda do |id, hash, want|
  signed = good.generate({ "_rails" => hash })
  v = { "id" => id, "secret_key_base" => SECRET, "key_digest" => "SHA256", "signed" => signed,
        "want" => want, "valid" => !want.nil?,
        "want_from" => "activesupport >= 7.1 messages/metadata.rb (6.1 cannot read this envelope)" }
  out["vectors"] << v
end
modern.call("envelope71_plain", { "data" => "messages" }, "messages")
modern.call("envelope71_future", { "data" => "messages", "exp" => future.iso8601(3) }, "messages")
modern.call("envelope71_expired", { "data" => "messages", "exp" => past.iso8601(3) }, nil)
modern.call("envelope71_purpose", { "data" => "messages", "pur" => "login" }, nil)

path = File.expand_path("../../channels/testdata/turbo/vectors.json", __dir__)
File.write(path, JSON.pretty_generate(out) + "\n")
warn "wrote #{out["vectors"].size} vectors and #{out["names"].size} names to #{path}"
