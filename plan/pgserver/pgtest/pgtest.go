// Package pgtest gives integration tests a real-PostgreSQL lab: servers
// run as the postgres OS user (initdb refuses root) in a short directory
// under /tmp (unix socket paths are limited to 107 bytes, and t.TempDir is
// root-only).
package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/walaudit/walaudit/plan/pgserver"
)

// NewLab returns a lab on bin (nil: the PostgreSQL that [pgserver.FindBin]
// finds, 15 on the CI machine), stopped and removed when the test ends.
func NewLab(ctx context.Context, t testing.TB, bin *pgserver.Bin) *pgserver.Lab {
	t.Helper()
	if bin == nil {
		b, err := pgserver.FindBin(ctx, "", 0)
		if err != nil {
			t.Fatalf("PostgreSQL binaries are required: %v", err)
		}
		bin = b
	}
	u, err := pgserver.LookupOSUser("")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := pgserver.NewLab(ctx, "", bin, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	return lab
}

// Provide returns the server binaries of a major version (see
// [pgserver.Provide]). When they cannot be installed the test fails in CI
// and is skipped elsewhere.
func Provide(t testing.TB, major int) *pgserver.Bin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := pgserver.Provide(ctx, major)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL %d is needed and cannot be provided (run `go run ./plan/pgserver/internal/warm %d`): %v", major, major, err)
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if b.Major != major {
		t.Fatalf("asked for PostgreSQL %d, got %s in %s", major, b.Version, b.Dir)
	}
	return b
}
