package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/plan"
)

func newTargetsCommand() *cli.Command {
	return &cli.Command{
		Name:  "targets",
		Usage: "list what a recovery can aim at: restore points, recoverable ranges, transactions around a moment",
		Description: `For an incident: every restore point (name, time, LSN, timeline) with the
backups that reach it, each timeline's recoverable LSN and time ranges per
backup, and with --around TIME the commits and aborts just before and after
that moment, so you can pick the exact stop (e.g. xid:N with --inclusive=false
to stop just before a bad job).
` + exitStatusHelp,
		Flags: append(append(archiveFlags(),
			&cli.StringFlag{Name: "around", Usage: "list the transactions nearest this `TIME` (a zone is required)"},
			&cli.IntFlag{Name: "count", Value: 5, Usage: "how many transactions to list on each side of --around"},
			formatFlag("table", "json"),
		), cacheFlags()...),
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "table" && format != "json" {
				return usagef("invalid --format %q: want table or json", format)
			}
			req := plan.TargetsRequest{BackupID: c.String("backup"), Count: c.Int("count"), Cache: openCache(c), Reverify: c.Bool("reverify")}
			if req.Cache != nil {
				defer req.Cache.Close()
			}
			if a := c.String("around"); a != "" {
				t, err := plan.ParseTargetTime(a)
				if err != nil {
					return usageErr(err)
				}
				req.Around = t
			}
			st, err := openStore(c, c.String("archive"))
			if err != nil {
				return err
			}
			lo, err := loadOptions(c, 0)
			if err != nil {
				return err
			}
			arch, err := audit.Load(c.Context, st, lo)
			if err != nil {
				return err
			}
			res, err := plan.Targets(c.Context, arch, req)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(c.App.Writer, res)
			}
			return renderTargets(c.App.Writer, res)
		},
	}
}

func fmtTS(t *plan.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05.000000Z07:00")
}

func renderTargets(w io.Writer, res *plan.TargetsResult) error {
	fmt.Fprintf(w, "archive   %s\n\nRESTORE POINTS\n", res.Archive)
	var rows [][]string
	for _, rp := range res.RestorePoints {
		name := rp.Name
		if rp.Duplicate {
			name += " (dup: recovery stops at the first)"
		}
		rows = append(rows, []string{name, fmtTS(rp.Time), rp.LSN.String(), rp.Timeline.String(), strings.Join(rp.Backups, ",")})
	}
	if err := writeTable(w, false, []string{"NAME", "TIME", "LSN", "TLI", "BACKUPS"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nRECOVERABLE (per target timeline and backup; time targets before TO_TIME)")
	rows = nil
	for _, tl := range res.Timelines {
		for _, r := range tl.Ranges {
			rows = append(rows, []string{tl.Timeline.String(), r.Backup, r.FromLSN.String() + "-" + r.ToLSN.String(), fmtTS(r.FromTime), fmtTS(r.ToTime)})
		}
	}
	if err := writeTable(w, false, []string{"TLI", "BACKUP", "LSNS", "FROM_TIME", "TO_TIME"}, rows); err != nil {
		return err
	}
	if res.Around != nil {
		fmt.Fprintf(w, "\nTRANSACTIONS AROUND %s\n", fmtTS(res.Around))
		rows = nil
		for _, x := range res.Before {
			rows = append(rows, []string{"before", x.Kind, fmt.Sprint(x.XID), fmtTS(x.Time), x.LSN.String(), x.Timeline.String()})
		}
		for _, x := range res.After {
			rows = append(rows, []string{"after", x.Kind, fmt.Sprint(x.XID), fmtTS(x.Time), x.LSN.String(), x.Timeline.String()})
		}
		if err := writeTable(w, false, []string{"", "KIND", "XID", "TIME", "LSN", "TLI"}, rows); err != nil {
			return err
		}
	}
	for _, f := range res.Findings {
		fmt.Fprintf(w, "  %s\n", f)
	}
	return nil
}
