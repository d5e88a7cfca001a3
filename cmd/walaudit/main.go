// Command walaudit answers, with proof, whether a PostgreSQL cluster can be
// restored to a point in time from its WAL archive and base backups.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	code := exitCode(err)
	if err != nil {
		// Verdicts were reported on stdout already; one line on stderr
		// still helps logs (cron, PostgreSQL's log for wal-fetch).
		fmt.Fprintf(os.Stderr, "walaudit: %v\n", err)
	}
	os.Exit(code)
}

// newApp builds the CLI; tests run the very same app with buffers.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "walaudit",
		Usage:   "prove that a PostgreSQL cluster can be restored to a point in time",
		Version: version,
		Writer:  stdout, ErrWriter: stderr,
		// main decides exit codes; urfave must never exit inside Run.
		ExitErrHandler: func(*cli.Context, error) {},
		// --keep-target name:a,b is one target: never split values on commas.
		DisableSliceFlagSeparator: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr(err)
		},
		Commands: []*cli.Command{
			newCheckCommand(),
			newDemoCommand(),
			newTargetsCommand(),
			newPlanCommand(),
			newDrillCommand(),
			newWalFetchCommand(),
			newInspectCommand(),
			newPruneCheckCommand(),
			newPrunePlanCommand(),
			newMetricsCommand(),
		},
		CustomAppHelpTemplate: cli.AppHelpTemplate + exitStatusHelp,
	}
	return app
}
