package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/pgserver"
)

func newDemoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "build a throwaway archiving PostgreSQL cluster with a known story and audit it",
		Description: `Creates a throwaway PostgreSQL cluster with WAL archiving (in a new directory
under --dir, default /tmp), takes a base backup, runs a small deterministic
trading workload with a restore point and an erroneous maintenance job, and
runs 'check' on the archive it made, printing every step. Needs PostgreSQL
server binaries (--pg-bin, PATH, pg_config or /usr/lib/postgresql/*/bin).
` + exitStatusHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "parent `DIR` for the demo's files (kept short: unix socket paths are limited)"},
			&cli.StringFlag{Name: "pg-bin", Usage: "`DIR` of PostgreSQL server binaries"},
			&cli.StringFlag{Name: "os-user", Value: "postgres", Usage: "OS user that runs PostgreSQL when walaudit runs as root"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the demo directory (archive, backup) for your own checks"},
		},
		Action: func(c *cli.Context) error {
			ctx := c.Context
			out := c.App.Writer
			bin, err := pgserver.FindBin(ctx, c.String("pg-bin"), 0)
			if err != nil {
				return err
			}
			u, err := pgserver.LookupOSUser(c.String("os-user"))
			if err != nil {
				return err
			}
			lab, err := pgserver.NewLab(ctx, c.String("dir"), bin, u)
			if err != nil {
				return err
			}
			defer func() {
				if c.Bool("keep") {
					fmt.Fprintf(out, "\nkept %s (archive in %s, backups in %s)\n", lab.Root, lab.Archive, lab.Backups)
					return
				}
				if err := lab.Close(); err != nil {
					fmt.Fprintf(c.App.ErrWriter, "walaudit demo: cleanup: %v\n", err)
				}
			}()
			sc, err := runBondScenario(ctx, lab, out)
			if err != nil {
				return err
			}
			if c.Bool("keep") {
				if err := sc.Primary.Stop(ctx); err != nil {
					return err
				}
			}
			failed := false
			for _, t := range []string{"latest", "name:" + sc.RestorePt, "time:" + sc.BeforeBad.Format("2006-01-02T15:04:05.999999Z07:00")} {
				tg, err := plan.ParseTarget(t)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "\n==> walaudit check --archive %s --backups %s --target '%s'\n", lab.Archive, lab.Backups, t)
				res, err := plan.Check(ctx, plan.Request{Archive: lab.Archive, Backups: lab.Backups, Target: tg, Inclusive: true,
					Timeline: plan.TimelineSetting{Kind: "latest"}})
				if err != nil {
					return err
				}
				if err := renderCheck(out, res); err != nil {
					return err
				}
				if res.Verdict != plan.Reachable {
					failed = true
				}
			}
			if failed {
				return verdict(exitNotOK, "demo: a target that should be reachable is not")
			}
			fmt.Fprintln(out, "\nwalaudit demo: every target is reachable")
			return nil
		},
	}
}
