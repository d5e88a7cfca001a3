// Command benchreplay measures how fast real PostgreSQL recovery replays
// the same gzip-compressed archive three ways, in one run:
//
//	gunzip     restore_command = 'gunzip -c ARCHIVE/%f.gz > %p' (serial)
//	wal-fetch  restore_command = 'walaudit wal-fetch --spool … %f %p' (prefetch)
//	local      restore_command = 'cp PLAIN/%f %p' (uncompressed, already local: the limit)
//
// Usage: go run ./plan/drill/internal/benchreplay [-mb 256] [-walaudit PATH]
package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/walaudit/walaudit/plan/pgserver"
)

func main() {
	mb := flag.Int("mb", 256, "MB of WAL to generate (16 MB segments)")
	walaudit := flag.String("walaudit", "", "walaudit binary (default: build it)")
	prefetch := flag.Int("prefetch", 8, "wal-fetch prefetch depth")
	flag.Parse()
	if err := run(*mb, *walaudit, *prefetch); err != nil {
		fmt.Fprintln(os.Stderr, "benchreplay:", err)
		os.Exit(1)
	}
}

func run(mb int, walaudit string, prefetch int) error {
	ctx := context.Background()
	bin, err := pgserver.FindBin(ctx, "", 0)
	if err != nil {
		return err
	}
	u, err := pgserver.LookupOSUser("")
	if err != nil {
		return err
	}
	lab, err := pgserver.NewLab(ctx, "", bin, u)
	if err != nil {
		return err
	}
	defer lab.Close()
	if walaudit == "" {
		walaudit = filepath.Join(lab.Root, "walaudit")
		if out, err := exec.Command("go", "build", "-o", walaudit, "./cmd/walaudit").CombinedOutput(); err != nil {
			return fmt.Errorf("build walaudit: %v\n%s", err, out)
		}
	}
	p, err := lab.InitPrimary(ctx, "primary", 16, map[string]string{"max_wal_size": "'2GB'", "checkpoint_timeout": "'30min'"})
	if err != nil {
		return err
	}
	if _, err := p.Run(ctx, "pgbench", "-h", p.SocketDir, "-p", fmt.Sprint(p.Port), "-U", "postgres", "-i", "-s", "10", "postgres"); err != nil {
		return err
	}
	backupDir, err := lab.BaseBackup(ctx, p, "base")
	if err != nil {
		return err
	}
	fmt.Printf("generating %d MB of WAL with pgbench\n", mb)
	for {
		lsn, err := p.QueryString(ctx, `SELECT pg_current_wal_lsn() - (SELECT redo_lsn FROM pg_control_checkpoint())`)
		if err != nil {
			return err
		}
		var n float64
		fmt.Sscan(lsn, &n)
		if n >= float64(mb)*(1<<20) {
			break
		}
		if _, err := p.Run(ctx, "pgbench", "-h", p.SocketDir, "-p", fmt.Sprint(p.Port), "-U", "postgres", "-n", "-t", "20000", "-c", "2", "postgres"); err != nil {
			return err
		}
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return err
	}
	if err := p.Stop(ctx); err != nil {
		return err
	}
	gz := filepath.Join(lab.Root, "archive-gz")
	if err := u.MkdirAll(gz, 0o755); err != nil {
		return err
	}
	ents, _ := os.ReadDir(lab.Archive)
	var walBytes int64
	for _, e := range ents {
		if err := gzipFile(filepath.Join(lab.Archive, e.Name()), filepath.Join(gz, e.Name()+".gz")); err != nil {
			return err
		}
		if len(e.Name()) == 24 {
			walBytes += 16 << 20
		}
	}
	fmt.Printf("archive: %d segments (%d MB), gzip copy in %s\n", walBytes>>24, walBytes>>20, gz)
	ways := []struct{ name, cmd string }{
		{"gunzip (serial)", fmt.Sprintf("gunzip -c %s/%%f.gz > %%p", gz)},
		{"walaudit wal-fetch", fmt.Sprintf("%s wal-fetch --archive %s --segment-size 16MB --spool %s/spool-%%s --prefetch %d %%f %%p", walaudit, gz, lab.Root, prefetch)},
		{"local uncompressed (limit)", fmt.Sprintf("cp %s/%%f %%p", lab.Archive)},
	}
	times := map[string]time.Duration{}
	for i, w := range ways {
		cmd := strings.Replace(w.cmd, "spool-%s", fmt.Sprintf("spool-%d", i), 1)
		if strings.Contains(cmd, "--spool") {
			if err := u.MkdirAll(filepath.Join(lab.Root, fmt.Sprintf("spool-%d", i)), 0o700); err != nil {
				return err
			}
		}
		start := time.Now()
		res, log, err := lab.Recover(ctx, backupDir, lab.Archive, map[string]string{"restore_command": pgserver.Quote(cmd)})
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", w.name, err, log)
		}
		d := time.Since(start)
		if res.State == pgserver.RecoveryFailed {
			return fmt.Errorf("%s: recovery failed: %v", w.name, res.FatalLines)
		}
		times[w.name] = d
		fmt.Printf("%-28s %8.2fs  replayed to %s\n", w.name, d.Seconds(), res.ReplayLSN)
	}
	limit := times["local uncompressed (limit)"]
	fmt.Printf("\nratios to the local limit: gunzip %.2fx, walaudit wal-fetch %.2fx\n",
		times["gunzip (serial)"].Seconds()/limit.Seconds(), times["walaudit wal-fetch"].Seconds()/limit.Seconds())
	return nil
}

func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return out.Close()
}
