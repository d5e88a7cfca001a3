package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/policy"
	"github.com/walaudit/walaudit/walname"
)

const pruneExitHelp = `
EXIT STATUS:
   0  proven OK (prune-check: the deletion is safe; prune-plan: a plan was made)
   1  proven not OK (the deletion breaks the policy, or the policy does not hold now)
   2  could not decide (bad usage, files in the list that do not exist, an
      unreadable archive, a pgBackRest/WAL-G/Barman repository)
`

// loadPruneSource reads the policy and loads the archive for prune-check
// and prune-plan, refusing backup tools' repositories.
func loadPruneSource(c *cli.Context, cmd string) (*policy.Policy, *policy.Source, plan.TimelineSetting, error) {
	req, err := archiveRequestFromFlags(c)
	tl := req.Timeline
	if err != nil {
		return nil, nil, tl, err
	}
	pol, err := policyFromFlags(c)
	if err != nil {
		return nil, nil, tl, err
	}
	if pol.Empty() {
		return nil, nil, tl, usageErr(errNoPolicy)
	}
	st, err := openStore(c, req.Archive)
	if err != nil {
		return nil, nil, tl, err
	}
	objs, err := policy.List(c.Context, st)
	if err != nil {
		return nil, nil, tl, err
	}
	if tool := policy.DetectTool(objs); tool != nil {
		return nil, nil, tl, errors.New(tool.RefusalMessage(cmd))
	}
	src, err := policy.LoadListed(c.Context, st, objs, audit.LoadOptions{ScanOptions: audit.ScanOptions{SegmentSize: req.SegmentSize}, BackupsDir: req.Backups})
	if err != nil {
		return nil, nil, tl, err
	}
	return pol, src, req.Timeline, nil
}

// archiveRequestFromFlags reads the archive flags and --target-timeline
// of commands that have no --target.
func archiveRequestFromFlags(c *cli.Context) (plan.Request, error) {
	req := plan.Request{Archive: c.String("archive"), Backups: c.String("backups"), Timeline: plan.TimelineSetting{Kind: "latest"}}
	if s := c.String("target-timeline"); s != "" {
		tl, err := plan.ParseTimelineSetting(s)
		if err != nil {
			return req, usageErr(err)
		}
		req.Timeline = tl
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
	return req, nil
}

// pruneArchiveFlags are the archive flags without --backup (a deletion is
// judged against every backup).
func pruneArchiveFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range archiveFlags() {
		if f.Names()[0] == "backup" {
			continue
		}
		out = append(out, f)
	}
	out = append(out, &cli.StringFlag{Name: "target-timeline", Value: "latest", Usage: "recovery_target_timeline the policy is judged along: latest, current or a number"})
	return append(out, cacheFlags()...)
}

// policyOptions are the policy evaluation options the flags choose, with
// the WAL summary cache (closed by the caller).
func policyOptions(c *cli.Context, tl plan.TimelineSetting) policy.Options {
	return policy.Options{Now: nowFunc, Timeline: tl, Cache: openCache(c), Reverify: c.Bool("reverify")}
}

func newPruneCheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune-check",
		Usage:     "prove that deleting a list of archive files keeps the recovery policy",
		UsageText: "walaudit prune-check --archive DIR [--backups DIR] --delete FILE|- POLICY FLAGS",
		Description: `Reads the files a retention job intends to delete (one per line: plain names,
archive-relative paths, full object keys or URLs, or paths of backups under
--backups; - for stdin; blank lines and # comments ignored), simulates the
archive without them and proves that the policy still holds. A plain segment
name stands for every stored form of that segment (compressed, checksummed);
naming one stored form leaves the others. When the deletion is not safe,
names the first file, in LSN order, whose deletion breaks the policy, and
which part. Plain archives only: pgBackRest, WAL-G and Barman repositories
are refused (use the tool's own expire command, and 'check' with the policy).
` + pruneExitHelp,
		Flags: append(append(pruneArchiveFlags(),
			&cli.StringFlag{Name: "delete", Required: true, Usage: "the deletion list: a `FILE`, or - for stdin"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table|json"},
		), policyFlags()...),
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "table" && format != "json" {
				return usagef("invalid --format %q: want table or json", format)
			}
			var r io.Reader
			name := c.String("delete")
			if name == "-" {
				r = c.App.Reader
				if r == nil {
					r = os.Stdin
				}
			} else {
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("read the deletion list: %w", err)
				}
				defer f.Close()
				r = f
			}
			entries, err := policy.ParseList(r)
			if err != nil {
				return fmt.Errorf("read the deletion list %s: %w", name, err)
			}
			pol, src, tl, err := loadPruneSource(c, "prune-check")
			if err != nil {
				return err
			}
			d, err := src.Resolve(entries)
			if err != nil {
				return err
			}
			opts := policyOptions(c, tl)
			defer opts.Cache.Close()
			res, err := policy.CheckDeletion(c.Context, src, d, pol, opts)
			if err != nil {
				return err
			}
			if format == "json" {
				err = writeJSON(c.App.Writer, res)
			} else {
				err = renderPruneCheck(c.App.Writer, res)
			}
			if err != nil {
				return err
			}
			switch {
			case res.Undecided:
				return verdict(exitUndecided, "%s", res.Message)
			case !res.Safe:
				return verdict(exitNotOK, "%s", res.Message)
			}
			return nil
		},
	}
}

func renderPruneCheck(w io.Writer, res *policy.CheckResult) error {
	state := "SAFE"
	switch {
	case res.Undecided:
		state = "UNDECIDED"
	case !res.Safe:
		state = "UNSAFE"
	}
	fmt.Fprintf(w, "%s: %s\n", state, res.Message)
	fmt.Fprintf(w, "policy    %s\n", res.Before.Policy.Summary())
	fmt.Fprintf(w, "delete    %d files, %s\n", res.Files, policy.FormatBytes(res.Bytes))
	var rows [][]string
	for _, r := range []struct {
		when string
		rep  *policy.Report
	}{{"before", res.Before}, {"after", res.After}} {
		if r.rep == nil {
			continue
		}
		holds := "holds"
		switch {
		case r.rep.Undecided:
			holds = "undecided"
		case !r.rep.Holds:
			holds = "does not hold"
		}
		var ids []string
		for _, b := range r.rep.Backups {
			if b.Restorable {
				ids = append(ids, b.ID)
			}
		}
		rows = append(rows, []string{r.when, holds, fmt.Sprintf("%d", r.rep.RestorableBackups), orDash(strings.Join(ids, ", "))})
	}
	fmt.Fprintln(w)
	return writeTable(w, false, []string{"", "POLICY", "RESTORABLE", "BACKUPS"}, rows)
}

func newPrunePlanCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune-plan",
		Usage:     "list the largest set of archive files that can be deleted while the recovery policy holds",
		UsageText: "walaudit prune-plan --archive DIR [--backups DIR] POLICY FLAGS [--format list|table|json] [--output FILE]",
		Description: `Finds the newest backup B such that deleting every WAL file older than B's
start (on every timeline) and the .backup files of older backups keeps the
policy, proves it by simulation, and prints those files oldest first, one per
line: the list a retention job feeds to its delete step, and that prune-check
accepts unchanged. Timeline history files and files walaudit does not
recognise are never listed. A summary (files, bytes, backups kept and those
no longer restorable) goes to stderr with --format list, to stdout with
--format table or when --output writes the list to a file.
` + pruneExitHelp,
		Flags: append(append(pruneArchiveFlags(),
			&cli.StringFlag{Name: "format", Value: "list", Usage: "list|table|json"},
			&cli.StringFlag{Name: "output", Usage: "write the list to `FILE` (atomically) instead of stdout"},
		), policyFlags()...),
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "list" && format != "table" && format != "json" {
				return usagef("invalid --format %q: want list, table or json", format)
			}
			pol, src, tl, err := loadPruneSource(c, "prune-plan")
			if err != nil {
				return err
			}
			opts := policyOptions(c, tl)
			defer opts.Cache.Close()
			p, err := policy.PlanDeletion(c.Context, src, pol, opts)
			if err != nil {
				return err
			}
			var list strings.Builder
			for _, it := range p.Items {
				list.WriteString(it.Key + "\n")
			}
			if out := c.String("output"); out != "" && p.Holds {
				if err := writeFileAtomic(out, []byte(list.String())); err != nil {
					return err
				}
			}
			summary := c.App.Writer
			switch {
			case format == "json":
				if err := writeJSON(c.App.Writer, p); err != nil {
					return err
				}
				summary = nil
			case format == "list" && c.String("output") == "":
				fmt.Fprint(c.App.Writer, list.String())
				summary = c.App.ErrWriter
			}
			if summary != nil {
				if err := renderPrunePlan(summary, p, format == "table" && c.String("output") == "", list.String()); err != nil {
					return err
				}
			}
			if !p.Holds {
				return verdict(exitNotOK, "%s", p.Reason)
			}
			return nil
		},
	}
}

func renderPrunePlan(w io.Writer, p *policy.Plan, withList bool, list string) error {
	if w == nil {
		return nil
	}
	fmt.Fprintf(w, "%s\n", p.Reason)
	if !p.Holds {
		return nil
	}
	if p.Before != nil {
		fmt.Fprintf(w, "policy    %s\n", p.Before.Policy.Summary())
	}
	kept := fmt.Sprintf("%d", len(p.Kept))
	if len(p.Kept) > 0 {
		kept += " (" + strings.Join(p.Kept, ", ") + ")"
	}
	dropped := "-"
	if len(p.Dropped) > 0 {
		dropped = strings.Join(p.Dropped, ", ")
	}
	if err := writeTable(w, false, []string{"FILES", "BYTES", "BACKUPS KEPT", "NO LONGER RESTORABLE"},
		[][]string{{fmt.Sprint(p.Files), policy.FormatBytes(p.Bytes), kept, dropped}}); err != nil {
		return err
	}
	if len(p.Dropped) > 0 {
		fmt.Fprintf(w, "after this deletion %s cannot be restored: delete %s too\n", strings.Join(p.Dropped, ", "), pluralWords(len(p.Dropped), "its data directory", "their data directories"))
	}
	if withList && list != "" {
		fmt.Fprintf(w, "\nFILES (oldest first)\n%s", list)
	}
	return nil
}

// pluralWords picks the singular or the plural wording.
func pluralWords(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeFileAtomic writes data to path through a temporary file in the
// same directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
