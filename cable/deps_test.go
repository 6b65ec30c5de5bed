package cable_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDependencies runs `go list -deps` on package cable and fails if it
// links a module that only some programs need: a program on the in-memory
// pub/sub must not carry a Redis client (that lives in cable/redispubsub)
// or a PostgreSQL driver (cable/pgpubsub).
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("go not found in PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/gocable/gocable/cable" {
		t.Fatalf("go list -deps printed no package cable (last of %d lines); the test runs in the wrong directory?", len(deps))
	}
	forbidden := []struct {
		prefix, why string
	}{
		{"github.com/redis/go-redis/", "Redis is cable/redispubsub's, for the programs that use it"},
		{"github.com/gocable/gocable/cable/redispubsub", "cable must not import its Redis adapter"},
		{"github.com/jackc/", "PostgreSQL is cable/pgpubsub's, for the programs that use it"},
		{"github.com/gocable/gocable/cable/pgpubsub", "cable must not import its PostgreSQL adapter"},
		{"modernc.org/sqlite", "database drivers are cable/solidcable's, for the programs that use it"},
		{"github.com/go-sql-driver/mysql", "database drivers are cable/solidcable's, for the programs that use it"},
		{"github.com/gocable/gocable/cable/solidcable", "cable must not import its Solid Cable adapter"},
	}
	for _, f := range forbidden {
		var found []string
		for _, d := range deps {
			if strings.HasPrefix(d, f.prefix) {
				found = append(found, d)
			}
		}
		if len(found) > 0 {
			t.Errorf("package cable depends on %d packages under %s (%s): %s", len(found), f.prefix, f.why, strings.Join(found, ", "))
		}
	}
}
