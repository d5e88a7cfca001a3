package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/walaudit/walaudit/plan/drill"
)

func newDrillCommand() *cli.Command {
	return &cli.Command{
		Name:  "drill",
		Usage: "prove it: restore a base backup, replay WAL with a real PostgreSQL server to the target, verify the data",
		Description: `Plans exactly as 'check' does and stops with exit 1 before touching anything when
the plan says unreachable (--force restores anyway, so PostgreSQL's own failure
becomes evidence). Then restores the chosen pg_basebackup output into a new
scratch directory (verified against backup_manifest, tablespaces remapped into
the scratch directory), writes recovery.signal and a neutralised configuration
(restore_command = this binary's wal-fetch on the same archive, exactly one
recovery target, recovery_target_action = 'pause', archive_mode = off, no TCP),
starts the real server, waits for it to stop where the plan said, runs the
verification checks (--verify FILE) and writes an evidence transcript,
report.md and report.json (--report-dir). The server is always stopped and the
scratch directory removed (unless --keep), also on Ctrl-C and on failure.
` + exitStatusHelp,
		Flags: append(append(archiveFlags(), targetFlags()...),
			&cli.StringFlag{Name: "verify", Usage: "verification checks `FILE` (YAML: named SQL queries with expected rows, count or value)"},
			&cli.StringFlag{Name: "pg-bin", Usage: "`DIR` of PostgreSQL server binaries of the backup's major version"},
			&cli.StringFlag{Name: "scratch", Usage: "parent `DIR` of the drill's scratch directory (default: the system temp dir)"},
			&cli.StringFlag{Name: "os-user", Value: "postgres", Usage: "OS user that runs PostgreSQL when walaudit runs as root"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the scratch directory"},
			&cli.BoolFlag{Name: "force", Usage: "restore even when the plan says unreachable"},
			&cli.BoolFlag{Name: "promote", Usage: "promote at the target instead of pausing (needed for --amcheck when amcheck is not installed)"},
			&cli.BoolFlag{Name: "amcheck", Usage: "run bt_index_check over every btree index"},
			&cli.StringFlag{Name: "report-dir", Usage: "write transcript.txt, report.md and report.json into `DIR`"},
			&cli.DurationFlag{Name: "timeout", Value: 0, Usage: "deadline for the replay (default 30m)"},
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "run the drill N times and report whether the evidence is identical"},
		),
		Action: runDrill,
	}
}

func runDrill(c *cli.Context) error {
	req, err := requestFromFlags(c)
	if err != nil {
		return err
	}
	defer req.Cache.Close()
	if c.Int("repeat") < 1 {
		return usagef("--repeat must be at least 1")
	}
	arch, err := loadArchive(c, req)
	if err != nil {
		return err
	}
	var storeFlags []string
	for _, f := range []string{"s3-endpoint", "s3-region"} {
		if v := c.String(f); v != "" {
			storeFlags = append(storeFlags, "--"+f, v)
		}
	}
	if c.Bool("s3-path-style") {
		storeFlags = append(storeFlags, "--s3-path-style")
	}
	opts := drill.Options{Request: req, Archive: arch, StoreFlags: storeFlags, VerifyFile: c.String("verify"), PGBin: c.String("pg-bin"),
		Scratch: c.String("scratch"), OSUser: c.String("os-user"), Keep: c.Bool("keep"), Force: c.Bool("force"),
		Promote: c.Bool("promote"), Amcheck: c.Bool("amcheck"), Timeout: c.Duration("timeout"), Progress: progressWriter(c.App.ErrWriter)}
	n := c.Int("repeat")
	var outs []*drill.Outcome
	for i := 1; i <= n; i++ {
		if n > 1 {
			fmt.Fprintf(c.App.Writer, "==> drill run %d of %d\n", i, n)
		}
		out, err := drill.Run(c.Context, opts)
		if err != nil {
			if errors.Is(err, drill.ErrRefused) {
				return usageErr(err)
			}
			return err
		}
		outs = append(outs, out)
		if dir := c.String("report-dir"); dir != "" {
			d := dir
			if n > 1 {
				d = filepath.Join(dir, fmt.Sprintf("run-%d", i))
			}
			if err := drill.WriteReport(d, out.Report); err != nil {
				return err
			}
		}
		if err := drill.WriteTranscript(c.App.Writer, out.Report.Sessions); err != nil {
			return err
		}
		if out.Scratch != "" {
			fmt.Fprintf(c.App.Writer, "scratch directory kept: %s\n", out.Scratch)
		}
	}
	pass := true
	for _, o := range outs {
		pass = pass && o.Pass
	}
	if n > 1 {
		same, why := drill.SameEvidence(outs)
		fmt.Fprintf(c.App.Writer, "\nrepeat: %d runs, evidence identical: %v%s\n", n, same, why)
		if dir := c.String("report-dir"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, "repeat.txt"), []byte(fmt.Sprintf("runs=%d identical=%v%s\n", n, same, why)), 0o644)
		}
		pass = pass && same
	}
	last := outs[len(outs)-1]
	if !pass {
		reason := last.Failure
		if reason == "" {
			reason = "the runs' evidence differs"
		}
		return verdict(exitNotOK, "drill FAILED: %s", reason)
	}
	fmt.Fprintf(c.App.Writer, "\ndrill PASSED: %s\n", last.Report.Summary)
	return nil
}

// progressWriter returns where progress lines go: the terminal when
// stderr is one (rewriting one status line), plain lines otherwise.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &statusLine{w: f}
	}
	return w
}

// statusLine redraws a single line on a terminal.
type statusLine struct{ w io.Writer }

func (s *statusLine) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	_, err := fmt.Fprintf(s.w, "\r\033[K%s", line)
	if strings.HasPrefix(line, "starting") || strings.HasPrefix(line, "restoring") {
		fmt.Fprintln(s.w)
	}
	return len(p), err
}
