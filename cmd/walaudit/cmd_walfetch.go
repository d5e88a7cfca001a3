package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/walname"
)

// restore_command exit codes. PostgreSQL takes any exit code up to 125 as
// "file not found" and quietly ends recovery there; above 125 (or a
// signal) it aborts recovery. So "absent" must be proven, and a store that
// cannot be asked must never pass for the end of the archive.
const (
	fetchAbsent = 1   // the archive provably does not hold the file
	fetchFatal  = 128 // the store failed persistently, or the file is damaged: abort recovery
)

// errBadContent marks a file that exists but must not be handed over.
var errBadContent = errors.New("damaged WAL file")

func newWalFetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-fetch",
		Usage:     "restore_command helper: fetch one WAL file from the archive into PostgreSQL's path",
		ArgsUsage: "FILE DEST   (restore_command = 'walaudit wal-fetch --archive URL %f %p')",
		Description: `Accepts only WAL segment and timeline history names for FILE, fetches the file
from the archive in whatever form it is stored, decompresses it, checks that a
segment has the full segment size and a valid page header, and writes it
atomically to DEST. With --spool it prefetches the next segments in the
background into the spool directory (each checked before it is handed out), so
replay does not wait on the store or on decompression.

EXIT STATUS (what PostgreSQL sees):
   0    the file was delivered
   1    the archive provably does not hold the file (PostgreSQL: end of archive)
   128  anything else: the store failed after retries, the file is damaged, or
        restore_command itself is wrong (bad flags, a name that is no WAL file
        name): PostgreSQL aborts recovery instead of mistaking a broken setup
        or a flaky network for the end of the archive
`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "archive", Usage: "WAL archive location", Required: true},
			&cli.StringFlag{Name: "segment-size", Usage: "expected wal_segment_size (default: each segment's own header)"},
			&cli.StringFlag{Name: "spool", Usage: "prefetch spool `DIR` (inside the drill's scratch directory)"},
			&cli.IntFlag{Name: "prefetch", Value: 4, Usage: "segments to prefetch ahead when --spool is set"},
			&cli.StringFlag{Name: "plan", Usage: "`FILE` listing the WAL files recovery will request, in order (for prefetching across timelines)"},
			&cli.IntFlag{Name: "retries", Value: 5, Usage: "attempts for transient store errors before exiting 128"},
			&cli.BoolFlag{Name: "prefetch-worker", Hidden: true},
			&cli.StringFlag{Name: "s3-endpoint", EnvVars: []string{store.EnvS3Endpoint}, Usage: "S3-compatible endpoint `URL`"},
			&cli.StringFlag{Name: "s3-region", EnvVars: []string{store.EnvS3Region}, Usage: "S3 region"},
			&cli.BoolFlag{Name: "s3-path-style", EnvVars: []string{store.EnvS3PathStyle}, Usage: "path-style S3 addressing"},
		}, layoutFlags()...),
		Action: func(c *cli.Context) error {
			err := runWalFetch(c)
			// PostgreSQL reads any exit code up to 125 as "file not found":
			// a usage error must abort recovery, not end it quietly.
			var u *usageError
			if errors.As(err, &u) {
				return verdict(fetchFatal, "wal-fetch: %v", u.err)
			}
			return err
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return verdict(fetchFatal, "wal-fetch: %v", err)
		},
	}
}

func runWalFetch(c *cli.Context) error {
	var sz walname.SegmentSize
	if s := c.String("segment-size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return usageErr(err)
		}
		sz = walname.SegmentSize(n)
		if err := sz.Validate(); err != nil {
			return usageErr(err)
		}
	}
	if c.Bool("prefetch-worker") {
		return prefetchWorker(c, sz)
	}
	if c.NArg() != 2 {
		return usagef("wal-fetch takes FILE and DEST (%%f and %%p), got %d arguments", c.NArg())
	}
	name, dest := c.Args().Get(0), c.Args().Get(1)
	if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
		return usagef("refusing %q: restore_command is only ever asked for WAL segment and timeline history names", name)
	}
	spool := c.String("spool")
	if spool != "" {
		if ok, err := takeFromSpool(spool, name, dest); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "walaudit wal-fetch: spool: %v; fetching from the archive\n", err)
		} else if ok {
			startPrefetch(c, name, sz)
			return nil
		}
	}
	fo, err := fetchOptionsFrom(c)
	if err != nil {
		return err
	}
	err = fetchWithRetries(c.Context, fo, name, dest, sz, c.Int("retries"), c.App.ErrWriter)
	if err != nil {
		return err
	}
	if spool != "" {
		startPrefetch(c, name, sz)
	}
	return nil
}

// fetchWithRetries delivers one file, retrying transient failures.
// fetchOptions say where and how to fetch from.
type fetchOptions struct {
	archive string
	store   store.Options
	scan    audit.ScanOptions
}

func fetchOptionsFrom(c *cli.Context) (fetchOptions, error) {
	so, err := layoutScanOptions(c)
	if err != nil {
		return fetchOptions{}, usageErr(err)
	}
	return fetchOptions{archive: c.String("archive"), scan: so, store: store.Options{S3: store.S3Options{
		Endpoint: c.String("s3-endpoint"), Region: c.String("s3-region"), PathStyle: c.Bool("s3-path-style")}}}, nil
}

func fetchWithRetries(ctx context.Context, fo fetchOptions, name, dest string, sz walname.SegmentSize, retries int, log io.Writer) error {
	if retries < 1 {
		retries = 1
	}
	var last error
	for attempt := 1; attempt <= retries; attempt++ {
		err := fetchOnce(ctx, fo, name, dest, sz)
		if err == nil {
			return nil
		}
		if errors.Is(err, audit.ErrNotInArchive) {
			return verdict(fetchAbsent, "%s: not in the archive", name)
		}
		last = err
		if errors.Is(err, errBadContent) {
			break // retrying cannot mend a damaged file
		}
		if ctx.Err() != nil || attempt == retries {
			break
		}
		wait := time.Duration(1<<(attempt-1)) * 500 * time.Millisecond
		fmt.Fprintf(log, "walaudit wal-fetch: %s: attempt %d of %d failed: %v; retrying in %s\n", name, attempt, retries, err, wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	fmt.Fprintf(log, "walaudit wal-fetch: %s: giving up: %v\n", name, last)
	return verdict(fetchFatal, "%s: %v", name, last)
}

// fetchOnce fetches, checks and atomically writes one file.
func fetchOnce(ctx context.Context, fo fetchOptions, name, dest string, sz walname.SegmentSize) error {
	st, err := store.OpenWith(ctx, fo.archive, fo.store)
	if err != nil {
		if store.IsNotExist(err) {
			// The archive location itself is gone: that is a broken
			// configuration, not the end of the archive.
			return fmt.Errorf("archive location: %w", err)
		}
		return err
	}
	rc, key, err := audit.FetchWALWith(ctx, st, name, sz, fo.scan)
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeChecked(rc, key, name, dest, sz)
}

// writeChecked copies a WAL file to dest via a temporary file, checking
// that a segment is whole: PostgreSQL would refuse a short one anyway, but
// only after it had been handed over.
func writeChecked(r io.Reader, key, name, dest string, sz walname.SegmentSize) error {
	tmp := dest + ".walaudit-tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := io.Copy(bw, r)
	if err != nil {
		if errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrTooLarge) || errors.Is(err, codec.ErrMismatch) {
			return fmt.Errorf("%w: read %s: %w", errBadContent, key, err)
		}
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if walname.IsSegmentName(name) {
		if err := checkSegmentFile(f, n, key, sz); err != nil {
			return fmt.Errorf("%w: %w", errBadContent, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, dest, err)
	}
	ok = true
	return nil
}

// checkSegmentFile verifies the size against the long page header's
// segment size (and the expected size when known).
func checkSegmentFile(f *os.File, n int64, key string, sz walname.SegmentSize) error {
	var hdr [40]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("%s: %d bytes, too short for a WAL segment: %w", key, n, err)
	}
	magic := binary.LittleEndian.Uint16(hdr[0:])
	info := binary.LittleEndian.Uint16(hdr[2:])
	own := walname.SegmentSize(binary.LittleEndian.Uint32(hdr[32:]))
	if magic&0xFF00 != 0xD100 || info&0x0002 == 0 || own.Validate() != nil {
		return fmt.Errorf("%s: not a WAL segment (no valid long page header)", key)
	}
	if sz != 0 && own != sz {
		return fmt.Errorf("%s: segment size %s in its header, expected %s", key, own, sz)
	}
	if n != int64(own) {
		return fmt.Errorf("%s: %d bytes after decompression, not the segment size %d", key, n, own)
	}
	return nil
}

// takeFromSpool hands over a prefetched file: the worker only ever
// renames complete, checked files into the spool.
func takeFromSpool(spool, name, dest string) (bool, error) {
	p := filepath.Join(spool, name)
	if _, err := os.Stat(p); err != nil {
		return false, nil
	}
	if err := os.Rename(p, dest); err == nil {
		return true, nil
	}
	// Another file system: copy.
	in, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer in.Close()
	if err := writeChecked(in, p, name, dest, 0); err != nil {
		return false, err
	}
	os.Remove(p)
	return true, nil
}

// nextNames lists what recovery will ask for after name: from the plan
// file when given, else the following segments on the same timeline.
func nextNames(c *cli.Context, name string, sz walname.SegmentSize, n int) []string {
	if n <= 0 || !walname.IsSegmentName(name) {
		return nil
	}
	if pf := c.String("plan"); pf != "" {
		b, err := os.ReadFile(pf)
		if err == nil {
			lines := strings.Fields(string(b))
			for i, l := range lines {
				if l == name {
					end := min(len(lines), i+1+n)
					return lines[i+1 : end]
				}
			}
		}
	}
	if sz == 0 {
		return nil // without a size the next name cannot be computed
	}
	nm, err := walname.Parse(name)
	if err != nil {
		return nil
	}
	seg, err := nm.SegNo(sz)
	if err != nil {
		return nil
	}
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, walname.SegmentName(nm.TLI, seg+walname.SegNo(i), sz))
	}
	return out
}

// startPrefetch launches a detached worker that fills the spool with the
// next files; at most one worker runs per spool (it holds a lock).
func startPrefetch(c *cli.Context, name string, sz walname.SegmentSize) {
	next := nextNames(c, name, sz, c.Int("prefetch"))
	var want []string
	for _, n := range next {
		if _, err := os.Stat(filepath.Join(c.String("spool"), n)); err != nil {
			want = append(want, n)
		}
	}
	if len(want) == 0 {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	args := []string{"wal-fetch", "--prefetch-worker", "--archive", c.String("archive"), "--spool", c.String("spool"),
		"--retries", fmt.Sprint(c.Int("retries"))}
	if s := c.String("segment-size"); s != "" {
		args = append(args, "--segment-size", s)
	}
	for _, f := range []string{"s3-endpoint", "s3-region", "layout", "stanza", "archive-id"} {
		if v := c.String(f); v != "" {
			args = append(args, "--"+f, v)
		}
	}
	if c.Bool("s3-path-style") {
		args = append(args, "--s3-path-style")
	}
	args = append(args, want...)
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive restore_command
	if err := cmd.Start(); err == nil {
		_ = cmd.Process.Release()
	}
}

// prefetchWorker fetches the named files into the spool, one lock holder
// at a time, each checked and renamed into place only when complete.
func prefetchWorker(c *cli.Context, sz walname.SegmentSize) error {
	spool := c.String("spool")
	if spool == "" {
		return usagef("--prefetch-worker needs --spool")
	}
	// Only the spool itself is created, never its parents: a worker that
	// starts after the drill removed its scratch directory must not bring
	// it back.
	if err := os.Mkdir(spool, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	lock, err := os.OpenFile(filepath.Join(spool, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // another worker is busy; the next call will start one
	}
	for _, name := range c.Args().Slice() {
		if !walname.IsSegmentName(name) && !walname.IsHistoryName(name) {
			continue
		}
		dest := filepath.Join(spool, name)
		if _, err := os.Stat(dest); err == nil {
			continue
		}
		// A prefetch failure is not fatal: the foreground fetch retries
		// and decides.
		fo, err := fetchOptionsFrom(c)
		if err != nil {
			return err
		}
		if err := fetchWithRetries(c.Context, fo, name, dest, sz, 1, io.Discard); err != nil {
			break
		}
	}
	return nil
}
