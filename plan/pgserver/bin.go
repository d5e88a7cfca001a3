// Package pgserver runs real PostgreSQL servers for drills, the demo and
// tests: it finds the binaries, creates and starts clusters as an
// unprivileged OS user when walaudit runs as root, and watches recovery.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Bin is a directory of PostgreSQL server binaries of one major version.
type Bin struct {
	Dir     string
	Major   int
	Version string // e.g. "15.18"
}

var versionRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// FindBin locates server binaries: dir when given, else the directory of
// an initdb on PATH, else `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin. When major is not 0 the binaries must be of
// that major version.
func FindBin(ctx context.Context, dir string, major int) (*Bin, error) {
	var cands []string
	if dir != "" {
		cands = []string{dir}
	} else {
		if p, err := exec.LookPath("initdb"); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				cands = append(cands, filepath.Dir(r))
			}
		}
		if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
			cands = append(cands, strings.TrimSpace(string(out)))
		}
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return versionOfPath(dirs[i]) > versionOfPath(dirs[j]) })
		cands = append(cands, dirs...)
	}
	var errs []error
	for _, d := range cands {
		b, err := probe(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if major != 0 && b.Major != major {
			errs = append(errs, fmt.Errorf("%s holds PostgreSQL %s, not %d", d, b.Version, major))
			continue
		}
		return b, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no PostgreSQL server binaries found: install them (Debian: apt-get install postgresql-15) or pass --pg-bin DIR")
	}
	return nil, fmt.Errorf("no usable PostgreSQL server binaries (pass --pg-bin DIR): %w", errors.Join(errs...))
}

func versionOfPath(p string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
	return v
}

func probe(ctx context.Context, dir string) (*Bin, error) {
	for _, n := range []string{"postgres", "initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return nil, fmt.Errorf("%s has no %s: %w", dir, n, err)
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s/postgres --version: %w", dir, err)
	}
	m := versionRe.FindSubmatch(bytes.TrimSpace(out))
	if m == nil {
		return nil, fmt.Errorf("unrecognised version output of %s/postgres: %q", dir, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	ver := string(m[1])
	if len(m[2]) > 0 {
		ver += "." + string(m[2])
	}
	return &Bin{Dir: dir, Major: major, Version: ver}, nil
}

// Path returns the full path of a program in the directory.
func (b *Bin) Path(name string) string { return filepath.Join(b.Dir, name) }

// Has reports whether the directory holds the program (npm builds lack
// pg_basebackup, psql and pg_waldump).
func (b *Bin) Has(name string) bool {
	_, err := os.Stat(b.Path(name))
	return err == nil
}
