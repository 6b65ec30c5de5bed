# frozen_string_literal: true

# Loads YAML documents as a Rails app loads config files, with Psych's
# YAML.unsafe_load (activesupport/lib/active_support/configuration_file.rb),
# and prints what Ruby made of each as a tagged JSON tree, for the Go tests
# of cable/railsconfig to compare with their own reading.
#
#   echo '["a: yes", "b: 0123"]' | ruby psych_load.rb
#
# Input: a JSON array of documents. Output: a JSON array with, for each
# document, {"map": [[key.to_s, tree], ...]}, {"seq": [tree, ...]}, or for
# a scalar {"class": name, "s": to_s} ("s" only for String, Symbol, Integer
# and booleans; class "boolean" for true and false, "nil" for nil), or
# {"error": class name} if Psych refused the document.

require "json"
require "yaml"
require "date"

def tag(value)
  case value
  when Hash then { "map" => value.map { |k, v| [k.to_s, tag(v)] } }
  when Array then { "seq" => value.map { |v| tag(v) } }
  when nil then { "class" => "nil" }
  when true, false then { "class" => "boolean", "s" => value.to_s }
  when String, Symbol, Integer then { "class" => value.class.name, "s" => value.to_s }
  else { "class" => value.class.name }
  end
end

docs = JSON.parse($stdin.read)
out = docs.map do |doc|
  tag(YAML.unsafe_load(doc))
rescue Psych::Exception => e
  { "error" => e.class.name }
end
puts JSON.generate(out)
