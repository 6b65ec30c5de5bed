package runner

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/gocable/gocable/cable"
)

// checkOrigin builds the Server's CheckOrigin from --allowed-origins,
// --disable-same-origin and --disable-forgery-protection, the settings of
// config.action_cable that Rails' allow_request_origin? reads
// (actioncable/lib/action_cable/connection/base.rb). A refusal is logged
// as Rails logs "Request origin not allowed: <origin>", with the flag that
// allows it, since carrying allowed_request_origins over is a step of a
// migration that is easily missed.
func (c *config) checkOrigin(logger *slog.Logger) (func(*http.Request) bool, error) {
	if c.disableForgery {
		return func(*http.Request) bool { return true }, nil
	}
	origins, err := cable.ParseOrigins(splitOrigins(c.origins))
	if err != nil {
		return nil, fmt.Errorf("--allowed-origins: %w", err)
	}
	origins.DisableSameOrigin = c.disableSameHost
	return func(r *http.Request) bool {
		if origins.Check(r) {
			return true
		}
		logger.InfoContext(r.Context(), "cable: request origin not allowed; allow it with --allowed-origins (env GOCABLE_ALLOWED_ORIGINS)",
			"origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return false
	}, nil
}

// closedPattern matches the end of a /regexp/ entry: a slash and flags.
var closedPattern = regexp.MustCompile(`./[a-z]*$`)

// splitOrigins splits --allowed-origins at commas, except inside a
// /regexp/, which may hold one (/\Ahttps:\/\/a{1,3}\.example\z/): pieces
// are joined back until the pattern's closing slash.
func splitOrigins(s string) []string {
	var out []string
	for _, piece := range strings.Split(s, ",") {
		if n := len(out); n > 0 {
			last := strings.TrimSpace(out[n-1])
			if strings.HasPrefix(last, "/") && !closedPattern.MatchString(last) {
				out[n-1] += "," + piece
				continue
			}
		}
		out = append(out, piece)
	}
	return out
}
