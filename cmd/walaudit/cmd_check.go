package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/store"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/walname"
)

// archiveFlags are shared by every command that reads an archive.
func archiveFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "archive", Usage: "WAL archive location: a directory, file:// or s3:// URL; a plain archive or a pgBackRest/WAL-G/Barman repository root", Required: true},
		&cli.StringFlag{Name: "backups", Usage: "directory holding pg_basebackup outputs, one sub-directory per backup"},
		&cli.StringFlag{Name: "backup", Usage: "consider only the backup with this `ID`"},
		&cli.StringFlag{Name: "segment-size", Usage: "wal_segment_size (e.g. 16MB) when the archive cannot tell"},
		&cli.StringFlag{Name: "s3-endpoint", EnvVars: []string{store.EnvS3Endpoint}, Usage: "S3-compatible endpoint `URL` (MinIO, Ceph)"},
		&cli.StringFlag{Name: "s3-region", EnvVars: []string{store.EnvS3Region}, Usage: "S3 region"},
		&cli.BoolFlag{Name: "s3-path-style", EnvVars: []string{store.EnvS3PathStyle}, Usage: "path-style S3 addressing (MinIO, Ceph)"},
	}, layoutFlags()...)
}

// openStore opens an archive location with the S3 flags.
func openStore(c *cli.Context, location string) (store.Store, error) {
	st, err := store.OpenWith(c.Context, location, store.Options{S3: store.S3Options{
		Endpoint: c.String("s3-endpoint"), Region: c.String("s3-region"), PathStyle: c.Bool("s3-path-style")}})
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	return st, nil
}

func targetFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "target", Value: "latest", Usage: "recovery target: time:TIMESTAMP, lsn:X/Y, xid:N, name:TEXT, immediate or latest"},
		&cli.StringFlag{Name: "target-timeline", Value: "latest", Usage: "recovery_target_timeline: latest, current or a number"},
		&cli.BoolFlag{Name: "inclusive", Value: true, Usage: "recovery_target_inclusive (--inclusive=false to stop before the target)"},
		&cli.BoolFlag{Name: "names-only", Usage: "judge from file names and backup metadata without decoding WAL (fast; time/xid/name targets undecided)"},
	}, cacheFlags()...)
}

// cacheFlags choose the WAL summary cache (see openCache).
func cacheFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cache-dir", Usage: "WAL summary cache `DIR` (default: the user cache directory, walaudit/)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "decode WAL without reading or writing the summary cache"},
		&cli.BoolFlag{Name: "reverify", Usage: "re-read every segment and refresh the cache (bit rot changes neither size nor time)"},
	}
}

// openCache opens the summary cache the flags choose, nil with --no-cache.
// A cache that cannot be opened only costs speed: it says so and goes on.
func openCache(c *cli.Context) *walcache.Cache {
	if c.Bool("no-cache") {
		return nil
	}
	cache, err := walcache.Open(c.String("cache-dir"))
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "walaudit: WAL summary cache unavailable (%v); decoding without it\n", err)
		return nil
	}
	return cache
}

func formatFlag(allowed ...string) cli.Flag {
	return &cli.StringFlag{Name: "format", Value: "table", Usage: strings.Join(allowed, "|")}
}

// requestFromFlags reads the archive and target flags and, when they are
// valid, opens the summary cache (the caller closes req.Cache).
func requestFromFlags(c *cli.Context) (plan.Request, error) {
	req := plan.Request{
		Archive:   c.String("archive"),
		Backups:   c.String("backups"),
		BackupID:  c.String("backup"),
		Inclusive: c.Bool("inclusive"),
		NamesOnly: c.Bool("names-only"),
		Reverify:  c.Bool("reverify"),
	}
	var err error
	if req.Target, err = plan.ParseTarget(c.String("target")); err != nil {
		return req, usageErr(err)
	}
	if req.Timeline, err = plan.ParseTimelineSetting(c.String("target-timeline")); err != nil {
		return req, usageErr(err)
	}
	if s := c.String("segment-size"); s != "" {
		sz, err := parseSize(s)
		if err != nil {
			return req, usageErr(err)
		}
		req.SegmentSize = walname.SegmentSize(sz)
		if err := req.SegmentSize.Validate(); err != nil {
			return req, usageErr(err)
		}
	}
	req.Cache = openCache(c)
	return req, nil
}

func parseSize(s string) (uint64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := uint64(1)
	for suf, m := range map[string]uint64{"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30} {
		if strings.HasSuffix(u, suf) && strings.TrimRight(strings.TrimSuffix(u, suf), "0123456789") == "" {
			mult, u = m, strings.TrimSuffix(u, suf)
			break
		}
	}
	var n uint64
	if _, err := fmt.Sscan(u, &n); err != nil || strings.TrimLeft(u, "0123456789") != "" {
		return 0, fmt.Errorf("invalid size %q: want e.g. 16MB", s)
	}
	return n * mult, nil
}

func newCheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "decide whether a recovery target is reachable from some base backup",
		Description: `Inventories the archive, builds the timeline tree and per-timeline coverage,
and decides, with PostgreSQL's own rules, whether the target is reachable from
each base backup. Without --target it checks 'latest': the end of the newest
timeline's archived WAL.
` + exitStatusHelp,
		Flags: append(append(append(archiveFlags(), targetFlags()...), formatFlag("table", "json", "nagios")), checkPolicyFlags()...),
		Action: checkAction(func(c *cli.Context) error {
			req, err := requestFromFlags(c)
			if err != nil {
				return err
			}
			defer req.Cache.Close()
			pol, err := policyFromFlags(c)
			if err != nil {
				return err
			}
			format := c.String("format")
			if format != "table" && format != "json" && format != "nagios" {
				return usagef("invalid --format %q: want table, json or nagios", format)
			}
			arch, err := loadArchive(c, req)
			if err != nil {
				return err
			}
			res, err := plan.Evaluate(c.Context, arch, req)
			if err != nil {
				return err
			}
			return finishCheck(c, pol, arch, req, res)
		}),
	}
}

func verdictOf(res *plan.Result) error {
	switch res.Verdict {
	case plan.Reachable:
		return nil
	case plan.Unreachable:
		return verdict(exitNotOK, "unreachable: %s", res.Reason)
	}
	return verdict(exitUndecided, "undecided: %s", res.Reason)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func renderCheck(w io.Writer, res *plan.Result) error {
	fmt.Fprintf(w, "archive   %s (%s segments", res.Archive, walname.SegmentSize(res.SegmentSize))
	if res.SystemID != "" {
		fmt.Fprintf(w, ", system %s", res.SystemID)
	}
	fmt.Fprintln(w, ")")
	for _, sy := range res.Systems {
		fmt.Fprintf(w, "system    %s: %s..%s (%d %s), backups %s\n", sy.SystemID, sy.FirstSegment, sy.LastSegment, sy.Segments,
			pluralWords(sy.Segments, "segment", "segments"), strings.Join(sy.Backups, ", "))
	}
	tl := res.Target.Timeline
	if res.Target.ResolvedTimeline != 0 && tl != res.Target.ResolvedTimeline.String() {
		tl += fmt.Sprintf(" (= %d)", res.Target.ResolvedTimeline)
	}
	tv := res.Target.Type
	if res.Target.Value != "" {
		tv += ":" + res.Target.Value
	}
	fmt.Fprintf(w, "target    %s, inclusive %v, timeline %s\n", tv, res.Target.Inclusive, tl)
	fmt.Fprintf(w, "verdict   %s", strings.ToUpper(string(res.Verdict)))
	if res.Backup != nil {
		fmt.Fprintf(w, " from backup %s", res.Backup.ID)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "          %s\n", res.Reason)
	if res.Stop != nil {
		fmt.Fprintf(w, "stop      %s on timeline %d (pg_last_wal_replay_lsn() after the stop)", res.Stop.LSN, res.Stop.Timeline)
		if res.Stop.XID != 0 {
			fmt.Fprintf(w, ", xid %d", res.Stop.XID)
		}
		if res.Stop.Time != nil {
			fmt.Fprintf(w, ", %s", res.Stop.Time.Format("2006-01-02 15:04:05.999999Z07:00"))
		}
		fmt.Fprintln(w)
	}
	if len(res.TimelinePath) > 0 {
		var parts []string
		for _, p := range res.TimelinePath {
			s := fmt.Sprintf("TLI %d from %s", p.Timeline, p.BeginLSN)
			if p.EndLSN != nil {
				s += " to " + p.EndLSN.String()
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "path      %s\n", strings.Join(parts, " -> "))
	}
	if res.SegmentsNeeded > 0 || len(res.Missing) > 0 {
		fmt.Fprintf(w, "wal       %d segment files needed", res.SegmentsNeeded)
		if len(res.Missing) > 0 {
			fmt.Fprintf(w, ", missing: %s", strings.Join(res.Missing, ", "))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "\nTIMELINES")
	var rows [][]string
	for _, t := range res.Timelines {
		parent := "-"
		if t.Parent != 0 {
			parent = fmt.Sprintf("%d @ %s", t.Parent, t.SwitchLSN)
		}
		cov := []string{}
		for _, r := range t.Ranges {
			cov = append(cov, fmt.Sprintf("%s-%s", r.StartLSN, r.EndLSN))
		}
		gaps := []string{}
		for _, g := range t.Gaps {
			if g.Count == 1 {
				gaps = append(gaps, g.First)
			} else {
				gaps = append(gaps, fmt.Sprintf("%s..%s (%d)", g.First, g.Last, g.Count))
			}
		}
		rows = append(rows, []string{t.Timeline.String(), parent, fmt.Sprint(t.Segments), orDash(strings.Join(cov, " ")), orDash(strings.Join(gaps, " "))})
	}
	if err := writeTable(w, false, []string{"TLI", "PARENT @ SWITCH", "SEGS", "COVERED LSNS", "GAPS"}, rows); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nBACKUPS")
	rows = nil
	for _, b := range res.Backups {
		window := "-"
		if b.Window != nil {
			window = fmt.Sprintf("%s-%s", b.Window.FromLSN, b.Window.ToLSN)
		}
		stop := "?"
		if b.StopLSN != 0 {
			stop = b.StopLSN.String()
		}
		rows = append(rows, []string{b.ID, fmt.Sprint(b.Timeline), b.StartLSN.String(), stop, window, strings.ToUpper(string(b.Verdict))})
	}
	if err := writeTable(w, false, []string{"BACKUP", "TLI", "START", "STOP", "RECOVERABLE", "VERDICT"}, rows); err != nil {
		return err
	}
	for _, b := range res.Backups {
		fmt.Fprintf(w, "  %s: %s\n", b.ID, b.Reason)
		if b.Window != nil && b.Window.FromTime != nil {
			to := "no commit after the consistency point yet"
			if b.Window.ToTime != nil {
				to = "before " + b.Window.ToTime.Format("2006-01-02 15:04:05.000000Z07:00") + " (the last archived commit)"
			}
			fmt.Fprintf(w, "    time targets from %s to %s\n", b.Window.FromTime.Format("2006-01-02 15:04:05Z07:00"), to)
		}
		if b.Suggestion != "" {
			fmt.Fprintf(w, "    -> %s\n", b.Suggestion)
		}
	}
	if len(res.Findings) > 0 {
		fmt.Fprintf(w, "\nFINDINGS (%d errors, %d warnings)\n", finding.Count(res.Findings, finding.Error), finding.Count(res.Findings, finding.Warning))
		for _, f := range res.Findings {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
