package railsconfig

import (
	"strings"
	"testing"
)

func TestRenderERB(t *testing.T) {
	env := envMap{"REDIS_URL": "redis://env:6379/2", "EMPTY": "", "PREFIX": "from_env"}
	tests := []struct {
		name, in, want string
	}{
		{"no ERB", "url: redis://x\n", "url: redis://x\n"},
		{"rails new template, set", `url: <%= ENV.fetch("REDIS_URL") { "redis://localhost:6379/1" } %>`, "url: redis://env:6379/2"},
		{"rails new template, unset", `url: <%= ENV.fetch("NOPE") { "redis://localhost:6379/1" } %>`, "url: redis://localhost:6379/1"},
		{"fetch with default", `url: <%= ENV.fetch("NOPE", "redis://d:1") %>`, "url: redis://d:1"},
		{"fetch with default, set", `url: <%= ENV.fetch('REDIS_URL', 'redis://d:1') %>`, "url: redis://env:6379/2"},
		{"fetch with nil default", `p: <%= ENV.fetch("NOPE", nil) %>`, "p: "},
		{"fetch with empty block", `p: <%= ENV.fetch("NOPE") {} %>`, "p: "},
		{"fetch with integer default", `db: <%= ENV.fetch("NOPE") { 3 } %>`, "db: 3"},
		{"block beats default", `p: <%= ENV.fetch("NOPE", "a") { "b" } %>`, "p: b"},
		{"brackets", `p: <%= ENV["PREFIX"] %>`, "p: from_env"},
		{"brackets, unset", `p: <%= ENV['NOPE'] %>`, "p: "},
		{"or, unset", `u: <%= ENV["NOPE"] || "redis://fallback" %>`, "u: redis://fallback"},
		{"or, empty is truthy as in Ruby", `u: <%= ENV["EMPTY"] || "redis://fallback" %>`, "u: "},
		{"or chain", `u: <%= ENV["NOPE"] || ENV["PREFIX"] || "x" %>`, "u: from_env"},
		{"parentheses", `u: <%= (ENV["NOPE"] || "x") %>`, "u: x"},
		{"verify none", `verify_mode: <%= OpenSSL::SSL::VERIFY_NONE %>`, "verify_mode: 0"},
		{"verify peer", `verify_mode: <%=OpenSSL::SSL::VERIFY_PEER%>`, "verify_mode: 1"},
		{"comment", "a: 1 <%# a comment %>\n", "a: 1 \n"},
		{"literal tag", "a: '<%% x %>'", "a: '<% x %>'"},
		{"escapes", `a: <%= "q\"\\\ts" %>`, "a: q\"\\\ts"},
		{"single-quote escapes", `a: <%= 'it\'s \n' %>`, `a: it's \n`},
		{"several tags", `<%= ENV["PREFIX"] %>-<%= ENV["PREFIX"] %>`, "from_env-from_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderERB(tt.in, env.lookup)
			if err != nil {
				t.Fatalf("renderERB(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("renderERB(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderERBErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"fetch unset without default", `u: <%= ENV.fetch("NOPE") %>`, `line 1: <%= ENV.fetch("NOPE") %>: ENV.fetch("NOPE"): NOPE is not set`},
		{"code tag", "a: 1\n<% if true %>\nb: 2\n<% end %>", "line 2: ERB tag <% if true %> is not supported"},
		{"trim tag", `<%- x -%>`, "is not supported"},
		{"method call", `u: <%= Rails.application.credentials.redis_url %>`, "unsupported Ruby"},
		{"string method", `u: <%= ENV["A"].to_s %>`, "unsupported Ruby"},
		{"interpolation", `u: <%= "redis://#{ENV["H"]}" %>`, "interpolation"},
		{"unterminated tag", `u: <%= ENV["A"]`, "line 1: unterminated ERB tag"},
		{"unterminated string", `u: <%= ENV["A] %>`, "unterminated Ruby string"},
		{"empty", `u: <%= %>`, "missing expression"},
		{"name must be a string", `u: <%= ENV[A] %>`, "want a quoted variable name"},
		{"line numbers", "a: 1\n\nb: <%= x %>", "line 3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderERB(tt.in, envMap{}.lookup)
			if err == nil {
				t.Fatalf("renderERB(%q) = %q; want an error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("renderERB(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}
