// Command warm installs the PostgreSQL server builds the tests use into
// the cache (see pgserver.Provide), so that test runs do not download:
//
//	go run ./plan/pgserver/internal/warm          # every supported major
//	go run ./plan/pgserver/internal/warm 13 18    # just these
//
// It prints one line per version and exits 1 if any cannot be provided.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/walaudit/walaudit/plan/pgserver"
)

func main() {
	majors := pgserver.SupportedMajors()
	if len(os.Args) > 1 {
		majors = nil
		for _, a := range os.Args[1:] {
			m, err := strconv.Atoi(a)
			if err != nil {
				fmt.Fprintf(os.Stderr, "warm: %q is not a major version number\n", a)
				os.Exit(2)
			}
			majors = append(majors, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	failed := false
	for _, m := range majors {
		b, err := pgserver.Provide(ctx, m)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warm: %v\n", err)
			failed = true
			continue
		}
		fmt.Printf("PostgreSQL %s: %s\n", b.Version, b.Dir)
	}
	if failed {
		os.Exit(1)
	}
}
