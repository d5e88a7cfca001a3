// Command benchcache measures what the WAL summary cache saves: the same
// `check --target time:…` on an unchanged archive of N 1 MiB segments,
// first with an empty cache (decode everything, store summaries), then
// warm (summaries only), then without any cache, in one run.
//
// Usage: go run ./plan/internal/benchcache [-segments 1000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
)

func main() {
	n := flag.Int("segments", 1000, "segments of WAL to archive (1 MiB each)")
	keep := flag.String("keep", "", "copy the archive's segments into `DIR` (for bench_waldump.sh)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the warm runs to `FILE`")
	reps := flag.Int("warm", 1, "warm runs (the median is reported; more give a profile more samples)")
	reopen := flag.Bool("reopen", false, "reopen the cache before the warm runs, as a new process would (no rows in memory)")
	flag.Parse()
	if err := run(*n, *keep, *prof, *reps, *reopen); err != nil {
		fmt.Fprintln(os.Stderr, "benchcache:", err)
		os.Exit(1)
	}
}

func run(n int, keep, prof string, reps int, reopen bool) error {
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
	p, err := lab.InitPrimary(ctx, "p", 1, map[string]string{"max_wal_size": "'4GB'", "checkpoint_timeout": "'30min'", "wal_compression": "off"})
	if err != nil {
		return err
	}
	if err := p.Exec(ctx, `CREATE TABLE t(i int, pad text)`); err != nil {
		return err
	}
	if _, err := lab.BaseBackup(ctx, p, "base"); err != nil {
		return err
	}
	fmt.Printf("generating %d segments of WAL\n", n)
	for {
		v, err := p.QueryString(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint::text`)
		if err != nil {
			return err
		}
		var pos int64
		fmt.Sscan(v, &pos)
		if pos >= int64(n)<<20 {
			break
		}
		if err := p.Exec(ctx, `INSERT INTO t SELECT g, repeat('x', 900) FROM generate_series(1, 20000) g`); err != nil {
			return err
		}
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return err
	}
	target, err := p.QueryString(ctx, `SELECT to_char((now() - interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`)
	if err != nil {
		return err
	}
	if err := p.Exec(ctx, `INSERT INTO t VALUES (0, 'last')`); err != nil {
		return err
	}
	if _, err := lab.SwitchAndWait(ctx, p); err != nil {
		return err
	}
	tg, err := plan.ParseTarget("time:" + target)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchcache")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cache, err := walcache.Open(dir)
	if err != nil {
		return err
	}
	defer cache.Close()
	measure := func(name string, c *walcache.Cache) (time.Duration, error) {
		start := time.Now()
		res, err := plan.Check(ctx, plan.Request{Archive: lab.Archive, Backups: lab.Backups, Target: tg, Inclusive: true, Cache: c})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		fmt.Printf("%-22s %8.4fs  %s, stop %v\n", name, d.Seconds(), res.Verdict, res.Stop.LSN)
		return d, nil
	}
	cold, err := measure("cold cache", cache)
	if err != nil {
		return err
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var warms []time.Duration
	for range max(reps, 1) {
		c := cache
		if reopen {
			// A repeated check is usually another process: it starts with
			// nothing of the cache in memory.
			if c, err = walcache.Open(dir); err != nil {
				return err
			}
		}
		d, err := measure("warm cache", c)
		if reopen {
			c.Close()
		}
		if err != nil {
			return err
		}
		warms = append(warms, d)
	}
	if prof != "" {
		pprof.StopCPUProfile()
	}
	slices.Sort(warms)
	warm := warms[len(warms)/2]
	none, err := measure("no cache", nil)
	if err != nil {
		return err
	}
	fmt.Printf("\nwarm / cold = %.1f%%, warm / no cache = %.1f%%\n", 100*warm.Seconds()/cold.Seconds(), 100*warm.Seconds()/none.Seconds())
	if keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(lab.Archive)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if len(e.Name()) != 24 {
				continue
			}
			b, err := os.ReadFile(lab.Archive + "/" + e.Name())
			if err != nil {
				return err
			}
			if err := os.WriteFile(keep+"/"+e.Name(), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
