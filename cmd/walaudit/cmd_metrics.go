package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/plan/policy"
)

func newMetricsCommand() *cli.Command {
	return &cli.Command{
		Name:      "metrics",
		Usage:     "export the archive's state and the recovery policy as Prometheus metrics",
		UsageText: "walaudit metrics --archive DIR [--backups DIR] [POLICY FLAGS] [--max-archive-age D] [--primary DSN] [--output FILE | --listen ADDR]",
		Description: `Checks the archive (latest, every timeline's recoverable range, the policy,
freshness and, with --primary, the primary's live view) and prints the state in
Prometheus' text exposition format: for node_exporter's textfile collector
(--output FILE writes it atomically), or serves it on --listen ADDR at
/metrics, re-checking on a scrape when the last check is older than
--min-interval. Every metric carries an archive label.

EXIT STATUS:
   0  the metrics were written (whether the policy holds is in walaudit_policy_ok)
   2  the check could not be done (walaudit_check_success 0 is still written)
`,
		Flags: append(append(append(pruneArchiveFlags(),
			&cli.StringFlag{Name: "output", Usage: "write the metrics to `FILE` atomically (e.g. /var/lib/node_exporter/textfile/walaudit.prom)"},
			&cli.StringFlag{Name: "listen", Usage: "serve the metrics on `ADDR` (e.g. :9187) at /metrics instead of printing them"},
			&cli.DurationFlag{Name: "min-interval", Value: time.Minute, Usage: "with --listen, the least time between two checks; scrapes in between get the last result"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "bound on one check"},
		), policyFlags()...), freshnessFlags()...),
		Action: func(c *cli.Context) error {
			req, err := archiveRequestFromFlags(c)
			if err != nil {
				return err
			}
			pol, err := policyFromFlags(c)
			if err != nil {
				return err
			}
			if c.String("output") != "" && c.String("listen") != "" {
				return usagef("--output and --listen exclude each other")
			}
			opts := policyOptions(c, req.Timeline)
			defer opts.Cache.Close()
			sreq := policy.SnapshotRequest{
				Load: func(ctx context.Context) (*audit.Archive, error) {
					st, err := openStore(c, req.Archive)
					if err != nil {
						return nil, err
					}
					return audit.Load(ctx, st, audit.LoadOptions{ScanOptions: audit.ScanOptions{SegmentSize: req.SegmentSize}, BackupsDir: req.Backups})
				},
				Policy:     pol,
				Options:    opts,
				PrimaryDSN: c.String("primary"),
			}
			check := func(ctx context.Context) *policy.Snapshot {
				ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
				defer cancel()
				defer opts.Cache.Release() // rows stay in the database, not in this server's memory
				return policy.TakeSnapshot(ctx, sreq)
			}
			if addr := c.String("listen"); addr != "" {
				col := policy.NewCollector(req.Archive, nil)
				col.Check, col.MinInterval, col.Timeout = check, c.Duration("min-interval"), c.Duration("timeout")
				return serveMetrics(c, addr, col)
			}
			snap := check(c.Context)
			reg := prometheus.NewRegistry()
			reg.MustRegister(policy.NewCollector(req.Archive, snap))
			if out := c.String("output"); out != "" {
				if err := prometheus.WriteToTextfile(out, reg); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
			} else {
				mfs, err := reg.Gather()
				if err != nil {
					return err
				}
				enc := expfmt.NewEncoder(c.App.Writer, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						return err
					}
				}
			}
			if snap.Err != nil {
				return fmt.Errorf("check failed (walaudit_check_success 0 written): %w", snap.Err)
			}
			if snap.PrimaryErr != nil {
				fmt.Fprintf(c.App.ErrWriter, "walaudit: primary: %v\n", snap.PrimaryErr)
			}
			return nil
		},
	}
}

// serveMetrics serves /metrics until the context ends (SIGINT, SIGTERM).
func serveMetrics(c *cli.Context, addr string, col *policy.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "walaudit metrics exporter: see /metrics")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageErr(fmt.Errorf("--listen %s: %w", addr, err))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(c.App.ErrWriter, "walaudit: serving metrics on http://%s/metrics\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-c.Context.Done():
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
