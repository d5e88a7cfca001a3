package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/drill"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
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
			&cli.BoolFlag{Name: "failure", Usage: "delete one WAL segment between the backup and the target: check names it and the drill fails (exit 1)"},
		},
		Action: runDemo,
	}
}

// demoChecks verify the restored data: the bad job's damage is undone and
// the index table agrees with the base table.
func demoChecks(openCAMuni int) string {
	return fmt.Sprintf(`checks:
  - name: ca_muni_reservations_open_again
    sql: SELECT count(*) FROM bond_reservations WHERE issuer = 'CA-MUNI' AND status = 'open'
    expect_value: %d
  - name: index_table_agrees_with_base_table
    sql: |
      SELECT count(*) FROM bond_reservations r
      FULL JOIN gsi_open_by_issuer g ON g.reservation_id = r.id
      WHERE (r.status = 'open') IS DISTINCT FROM (g.reservation_id IS NOT NULL)
         OR g.issuer IS DISTINCT FROM r.issuer AND g.reservation_id IS NOT NULL
    expect_value: 0
  - name: no_released_reservations
    sql: SELECT count(*) FROM bond_reservations WHERE status = 'released'
    expect_value: 0
`, openCAMuni)
}

func runDemo(c *cli.Context) error {
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
	if err := sc.Primary.Stop(ctx); err != nil {
		return err
	}
	if c.Bool("failure") {
		// Remove the segment that holds the restore point: between the
		// backup and the target.
		name, err := segmentAt(lab, sc.RestorePointLSN)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "==> --failure: deleting %s from the archive (it lies between the backup and the target)\n", name)
		if err := os.Remove(filepath.Join(lab.Archive, name)); err != nil {
			return err
		}
	}
	checksFile := filepath.Join(lab.Root, "checks.yaml")
	if err := os.WriteFile(checksFile, []byte(demoChecks(sc.OpenCAMuni)), 0o644); err != nil {
		return err
	}
	arch, err := loadArchive(c, plan.Request{Archive: lab.Archive, Backups: lab.Backups})
	if err != nil {
		return err
	}
	timeTarget := "time:" + sc.BeforeBad.Format("2006-01-02T15:04:05.000000Z07:00")
	failed := ""
	for _, t := range []string{"name:" + sc.RestorePt, timeTarget} {
		tg, err := plan.ParseTarget(t)
		if err != nil {
			return err
		}
		req := plan.Request{Archive: lab.Archive, Backups: lab.Backups, Target: tg, Inclusive: true, Timeline: plan.TimelineSetting{Kind: "latest"}}
		fmt.Fprintf(out, "\n==> walaudit check --archive %s --backups %s --target '%s'\n", lab.Archive, lab.Backups, t)
		res, err := plan.Evaluate(ctx, arch, req)
		if err != nil {
			return err
		}
		if err := renderCheck(out, res); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n==> walaudit drill --archive %s --backups %s --target '%s' --verify %s\n", lab.Archive, lab.Backups, t, checksFile)
		o, err := drill.Run(ctx, drill.Options{Request: req, Archive: arch, VerifyFile: checksFile, PGBin: bin.Dir, OSUser: c.String("os-user"),
			Scratch: lab.Root, Progress: c.App.ErrWriter})
		if err != nil {
			return err
		}
		if err := drill.WriteTranscript(out, o.Report.Sessions); err != nil {
			return err
		}
		if !o.Pass && failed == "" {
			failed = fmt.Sprintf("drill to %s: %s", t, o.Failure)
		}
	}
	if failed != "" {
		return verdict(exitNotOK, "demo: %s", failed)
	}
	fmt.Fprintf(out, "\nwalaudit demo: the archive restores the cluster to just before the bad job (xid %d): %d CA-MUNI reservations are open again and the index table agrees, proven by real recoveries to the restore point and to the time\n", sc.BadXID, sc.OpenCAMuni)
	return nil
}

// segmentAt names the archived segment holding lsn on timeline 1.
func segmentAt(lab *pgserver.Lab, lsn walname.LSN) (string, error) {
	ents, err := os.ReadDir(lab.Archive)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		n, err := walname.Parse(e.Name())
		if err != nil || n.Kind != walname.KindSegment {
			continue
		}
		if seg, err := n.SegNo(walname.SegmentSize(1 << 20)); err == nil && seg == lsn.Segment(1<<20) {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no archived segment holds %s", lsn)
}
