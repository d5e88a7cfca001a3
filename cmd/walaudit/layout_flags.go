package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/layout"
	"github.com/walaudit/walaudit/walname"
)

// layoutFlags choose how the archive location is read: which repository
// layout, which pgBackRest stanza and archive id, and whether pgBackRest's
// SHA-1 checksums are verified.
func layoutFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "layout", Value: layout.Auto,
			Usage: "archive layout: " + strings.Join(layout.Names(), "|") + " (auto: pgBackRest archive/<stanza>/, WAL-G wal_005/, Barman wals/+base/, else a plain archive_command directory)"},
		&cli.StringFlag{Name: "stanza", Usage: "pgBackRest `STANZA` (or Barman server directory) when the repository holds several"},
		&cli.StringFlag{Name: "archive-id", Usage: "pgBackRest archive `ID` (e.g. 14-1) to audit instead of the current cluster's"},
		&cli.BoolFlag{Name: "verify-checksums", Usage: "read every pgBackRest WAL file and compare its SHA-1 with the one in its name"},
	}
}

// layoutScanOptions reads the layout flags (no I/O). A command without
// them gets the zero options: auto detection.
func layoutScanOptions(c *cli.Context) (audit.ScanOptions, error) {
	opts := audit.ScanOptions{
		Layout:          c.String("layout"),
		Stanza:          c.String("stanza"),
		ArchiveID:       c.String("archive-id"),
		VerifyChecksums: c.Bool("verify-checksums"),
	}
	if opts.Layout != "" && !slices.Contains(layout.Names(), opts.Layout) {
		return opts, usagef("invalid --layout %q: want %s", opts.Layout, strings.Join(layout.Names(), ", "))
	}
	return opts, nil
}

// loadOptions builds the options of audit.Load from the archive and layout
// flags: --backups, --segment-size (sz, already parsed; 0 detects) and the
// layout flags.
func loadOptions(c *cli.Context, sz walname.SegmentSize) (audit.LoadOptions, error) {
	so, err := layoutScanOptions(c)
	if err != nil {
		return audit.LoadOptions{}, err
	}
	so.SegmentSize = sz
	return audit.LoadOptions{ScanOptions: so, BackupsDir: c.String("backups")}, nil
}
