package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/plan"
)

func newPlanCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "print the restore plan for a target as a runbook (markdown or JSON)",
		Description: `Decides the target as 'check' does and prints what an operator does at 3 a.m.:
the chosen backup and why (and why newer ones cannot reach the target), the
timeline path, the WAL files recovery will request in order, the exact recovery
settings, the restore commands, the predicted stop point and what to verify
afterwards. 'walaudit drill' executes this same plan.
` + exitStatusHelp,
		Flags: append(append(archiveFlags(), targetFlags()...),
			formatFlag("markdown", "json"),
			&cli.StringFlag{Name: "data-dir", Value: "/var/lib/postgresql/restore", Usage: "where the runbook restores the backup"},
		),
		Action: func(c *cli.Context) error {
			req, err := requestFromFlags(c)
			if err != nil {
				return err
			}
			defer req.Cache.Close()
			format := c.String("format")
			if format == "table" {
				format = "markdown"
			}
			if format != "markdown" && format != "json" {
				return usagef("invalid --format %q: want markdown or json", format)
			}
			arch, err := loadArchive(c, req)
			if err != nil {
				return err
			}
			res, err := plan.Evaluate(c.Context, arch, req)
			if err != nil {
				return err
			}
			// The runbook pins the resolved timeline as a number (a later
			// timeline appearing in the archive must not change the plan),
			// so its request list is computed with that setting.
			if res.Verdict == plan.Reachable && req.Timeline.Kind != "number" && res.Target.ResolvedTimeline != 0 {
				pinned := req
				pinned.Timeline = plan.TimelineSetting{Kind: "number", TLI: res.Target.ResolvedTimeline}
				if res2, err := plan.Evaluate(c.Context, arch, pinned); err == nil && res2.Verdict == plan.Reachable {
					res2.Target.Timeline = req.Timeline.String()
					res, req = res2, pinned
				}
			}
			rb := plan.BuildRunbook(res, arch, req, "walaudit", c.String("data-dir"))
			if format == "json" {
				err = writeJSON(c.App.Writer, rb)
			} else {
				err = renderRunbook(c.App.Writer, rb)
			}
			if err != nil {
				return err
			}
			return verdictOf(res)
		},
	}
}

// loadArchive opens and loads the archive a request names.
func loadArchive(c *cli.Context, req plan.Request) (*audit.Archive, error) {
	st, err := openStore(c, req.Archive)
	if err != nil {
		return nil, err
	}
	opts, err := loadOptions(c, req.SegmentSize)
	if err != nil {
		return nil, err
	}
	// The request's backups directory wins: commands such as demo build
	// their request without a --backups flag.
	if req.Backups != "" {
		opts.BackupsDir = req.Backups
	}
	return audit.Load(c.Context, st, opts)
}

func renderRunbook(w io.Writer, rb *plan.Runbook) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	tv := rb.Target.Type
	if rb.Target.Value != "" {
		tv += ":" + rb.Target.Value
	}
	p("# Restore plan: %s\n\n", tv)
	p("- archive: `%s`\n- verdict: **%s** — %s\n", rb.Archive, strings.ToUpper(string(rb.Verdict)), rb.Reason)
	if rb.Backup == nil {
		if len(rb.Missing) > 0 {
			p("- missing: %s\n", strings.Join(rb.Missing, ", "))
		}
		for _, f := range rb.Findings {
			p("- %s\n", f.Text)
		}
		p("\nNo backup reaches this target: there is nothing to restore. Fix what is listed above (restore the missing files from another copy) or choose another target (`walaudit targets`).\n")
		return nil
	}
	p("\n## 1. Backup\n\nUse **%s** (label %q, start %s, stop %s, timeline %d).\n", rb.Backup.ID, rb.Backup.Label, rb.Backup.StartLSN, rb.Backup.StopLSN, rb.Backup.Timeline)
	for _, r := range rb.Rejected {
		p("- newer backup %s cannot: %s\n", r.ID, r.Reason)
	}
	p("\n## 2. Timeline path\n\n")
	for _, e := range rb.Path {
		end := "end of WAL"
		if e.EndLSN != nil {
			end = e.EndLSN.String()
		}
		p("- timeline %d from %s to %s\n", e.Timeline, e.BeginLSN, end)
	}
	p("\n## 3. WAL files recovery will request, in order\n\n```\n%s\n```\n", strings.Join(rb.Requests, "\n"))
	p("History files that do not exist are normal probes (recovery asks for them to find the newest timeline).\n")
	p("\n## 4. Restore\n\n```sh\n%s\n```\n", strings.Join(rb.Restore, "\n"))
	p("\n## 5. Recovery settings (postgresql.auto.conf)\n\n```\n")
	for _, s := range rb.Settings {
		p("%s = %s\n", s.Name, s.Value)
	}
	p("```\n\n")
	for _, s := range rb.Settings {
		p("- `%s`: %s\n", s.Name, s.Why)
	}
	if rb.Stop != nil {
		p("\n## 6. Predicted stop\n\nRecovery %s; `pg_last_wal_replay_lsn()` = **%s** on timeline %d.\n", rb.Stop.Reason, rb.Stop.LSN, rb.Stop.Timeline)
	}
	p("\n## 7. Checklist after recovery\n\n")
	for _, v := range rb.Verify {
		p("- [ ] %s\n", v)
	}
	if len(rb.Findings) > 0 {
		p("\n## Findings\n\n")
		for _, f := range rb.Findings {
			p("- %s\n", f.Text)
		}
	}
	return nil
}
