package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/plan/policy"
	"github.com/walaudit/walaudit/walname"
)

// nowFunc is the clock of policy windows and freshness; tests stop it.
var nowFunc = time.Now

// policyFlags are the recovery policy, shared by check, prune-check,
// prune-plan and metrics.
func policyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "read the recovery policy from this YAML `FILE` (keys are the flag names; flags given too win)"},
		&cli.StringFlag{Name: "keep-window", Usage: "every moment of the last `DURATION` (15m, 36h, 7d, 2w) must stay recoverable"},
		&cli.StringFlag{Name: "keep-since", Usage: "every moment since `TIME` (a zone is required) must stay recoverable"},
		&cli.StringSliceFlag{Name: "keep-target", Usage: "a recovery `TARGET` (time:, lsn:, xid:, name:, immediate, latest) that must stay reachable; repeatable"},
		&cli.IntFlag{Name: "min-backups", Usage: "at least `N` base backups must stay restorable"},
		&cli.StringSliceFlag{Name: "acknowledged-gap", Usage: "a known, accepted gap, `SPEC` = \"FIRST[..LAST][; reason=TEXT][; by=WHO][; at=WHEN]\" (segment names): reported, not failed; repeatable"},
	}
}

// freshnessFlags are check's and metrics' live checks.
func freshnessFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "max-archive-age", Usage: "fail when the newest archived WAL file is older than `DURATION` by its store time (warn past half)"},
		&cli.StringFlag{Name: "primary", EnvVars: []string{"WALAUDIT_PRIMARY"}, Usage: "connect to the primary (`DSN`, libpq syntax) and compare its WAL position and pg_stat_archiver with the archive"},
	}
}

// checkPolicyFlags are the flags check adds for the policy, freshness and
// the primary.
func checkPolicyFlags() []cli.Flag { return append(policyFlags(), freshnessFlags()...) }

var targetKinds = []string{"time:", "lsn:", "xid:", "name:"}

func startsTarget(s string) bool {
	if s == "immediate" || s == "latest" {
		return true
	}
	for _, k := range targetKinds {
		if strings.HasPrefix(s, k) {
			return true
		}
	}
	return false
}

func startsGap(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= 24 && walname.IsSegmentName(s[:24])
}

// rejoin undoes urfave/cli's splitting of slice flags on commas (when the
// app does not disable it): a piece that cannot start a value belongs to
// the previous one.
func rejoin(vals []string, starts func(string) bool) []string {
	var out []string
	for _, v := range vals {
		if len(out) > 0 && !starts(v) {
			out[len(out)-1] += "," + v
			continue
		}
		out = append(out, v)
	}
	return out
}

// policyFromFlags reads --config and the policy flags (flags win over the
// file; lists are joined). It does no archive I/O.
func policyFromFlags(c *cli.Context) (*policy.Policy, error) {
	var base *policy.Policy
	if p := c.String("config"); p != "" {
		var err error
		if base, err = policy.LoadConfig(p); err != nil {
			return nil, usageErr(err)
		}
	}
	over := &policy.Policy{}
	var err error
	if s := c.String("keep-window"); s != "" {
		if over.KeepWindow, err = policy.ParseDuration(s); err != nil {
			return nil, usageErr(fmt.Errorf("--keep-window: %w", err))
		}
	}
	if s := c.String("keep-since"); s != "" {
		if over.KeepSince, err = plan.ParseTargetTime(s); err != nil {
			return nil, usageErr(fmt.Errorf("--keep-since: %w", err))
		}
	}
	for _, s := range rejoin(c.StringSlice("keep-target"), startsTarget) {
		t, err := plan.ParseTarget(s)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--keep-target: %w", err))
		}
		over.KeepTargets = append(over.KeepTargets, t)
	}
	if c.IsSet("min-backups") {
		if over.MinBackups = c.Int("min-backups"); over.MinBackups < 0 {
			return nil, usagef("--min-backups must not be negative")
		}
	}
	for _, s := range rejoin(c.StringSlice("acknowledged-gap"), startsGap) {
		g, err := policy.ParseAckGap(s)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--acknowledged-gap: %w", err))
		}
		over.Acknowledged = append(over.Acknowledged, g)
	}
	if c.IsSet("max-archive-age") || c.String("max-archive-age") != "" {
		if over.MaxArchiveAge, err = policy.ParseDuration(c.String("max-archive-age")); err != nil {
			return nil, usageErr(fmt.Errorf("--max-archive-age: %w", err))
		}
	}
	return policy.Merge(base, over), nil
}

// checkReport is check's JSON with the policy, freshness and primary
// sections added after the plan.Result fields.
type checkReport struct {
	*plan.Result
	Policy    *policy.Report    `json:"policy,omitempty"`
	Freshness *policy.Freshness `json:"freshness,omitempty"`
	Primary   *policy.Primary   `json:"primary,omitempty"`
}

type startKey struct{}

// checkAction wraps check's action: it notes when the check started and,
// with --format nagios, turns every error that is not already a verdict
// into one UNKNOWN status line and exit code 3.
func checkAction(fn cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		c.Context = context.WithValue(c.Context, startKey{}, time.Now())
		err := fn(c)
		if c.String("format") != "nagios" || err == nil || isVerdict(err) {
			return err
		}
		line := "WALAUDIT UNKNOWN - " + oneLine(err.Error())
		fmt.Fprintln(c.App.Writer, line)
		return verdict(nagiosUnknown, "%s", line)
	}
}

// Nagios plugin exit codes.
const (
	nagiosOK       = 0
	nagiosWarning  = 1
	nagiosCritical = 2
	nagiosUnknown  = 3
)

// finishCheck adds the policy, freshness and primary to check's result,
// prints the report in the chosen format and returns the exit verdict.
func finishCheck(c *cli.Context, pol *policy.Policy, arch *audit.Archive, req plan.Request, res *plan.Result) error {
	ctx := c.Context
	format := c.String("format")
	out := checkReport{Result: res}
	var failures []string
	undecided := ""

	if pol != nil && (!pol.Empty() || len(pol.Acknowledged) > 0) {
		opts := policy.Options{Now: nowFunc, Timeline: req.Timeline, Cache: req.Cache, Reverify: req.Reverify}
		// Reuse the check's own answer when it is the policy's question
		// (--names-only answers decode no WAL, so they have no windows).
		if req.Target.Kind == plan.TargetLatest && req.BackupID == "" && !req.NamesOnly {
			opts.Latest = res
		}
		rep, err := policy.Evaluate(ctx, arch, pol, opts)
		if err != nil {
			return err
		}
		out.Policy = rep
		res.Findings = append(rep.Acknowledge(res.Findings, arch.Inv), rep.Findings...)
		if rep.Undecided {
			undecided = rep.Reason
		}
		for _, v := range rep.Violations {
			failures = append(failures, "policy "+v.Part+": "+v.String())
		}
	}
	var maxAge time.Duration
	if pol != nil {
		maxAge = pol.MaxArchiveAge
	}
	fr := policy.CheckFreshness(arch.Inv, nowFunc(), maxAge)
	if maxAge > 0 {
		out.Freshness = fr
		res.Findings = append(res.Findings, fr.Findings...)
		if fr.Stale {
			failures = append(failures, fr.Findings[0].Message)
		}
	}
	if dsn := c.String("primary"); dsn != "" {
		p, err := policy.QueryPrimary(ctx, dsn, arch.Inv)
		if err != nil {
			return err
		}
		out.Primary = p
		res.Findings = append(res.Findings, p.Findings...)
		for _, f := range p.Findings {
			if f.Severity == finding.Error {
				failures = append(failures, f.Code+": "+f.Message)
			}
		}
	}
	finding.Sort(res.Findings)

	var err error
	switch format {
	case "json":
		err = writeJSON(c.App.Writer, out)
	case "nagios":
		return nagiosVerdict(c, out, fr, failures, undecided)
	default:
		if err = renderCheck(c.App.Writer, res); err == nil {
			renderPolicy(c.App.Writer, out)
		}
	}
	if err != nil {
		return err
	}
	if v := verdictOf(res); v != nil {
		return v
	}
	if len(failures) > 0 {
		return verdict(exitNotOK, "%s", failures[0])
	}
	if undecided != "" {
		return verdict(exitUndecided, "policy undecided: %s", undecided)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
}

// nagiosVerdict prints one Nagios status line with performance data and
// returns the plugin's exit code.
func nagiosVerdict(c *cli.Context, out checkReport, fr *policy.Freshness, failures []string, undecided string) error {
	res := out.Result
	state, code, text := "OK", nagiosOK, ""
	nonInfo := 0
	var firstWarn string
	for _, f := range res.Findings {
		if f.Severity != finding.Info {
			nonInfo++
			if firstWarn == "" {
				firstWarn = f.Code + ": " + f.Message
			}
		}
	}
	switch {
	case res.Verdict == plan.Undecided:
		state, code, text = "UNKNOWN", nagiosUnknown, "undecided: "+res.Reason
	case res.Verdict == plan.Unreachable:
		state, code, text = "CRITICAL", nagiosCritical, fmt.Sprintf("target %s unreachable: %s", targetText(res), res.Reason)
	case len(failures) > 0:
		state, code, text = "CRITICAL", nagiosCritical, failures[0]
	case undecided != "":
		state, code, text = "UNKNOWN", nagiosUnknown, "policy undecided: "+undecided
	case nonInfo > 0:
		state, code = "WARNING", nagiosWarning
		text = fmt.Sprintf("%d %s: %s", nonInfo, pluralWords(nonInfo, "warning", "warnings"), firstWarn)
	default:
		text = fmt.Sprintf("target %s reachable", targetText(res))
		if res.Backup != nil {
			text += " from backup " + res.Backup.ID
		}
		if out.Policy != nil {
			text += "; policy holds (" + out.Policy.Policy.Summary() + ")"
		}
		if fr.NewestTime != nil {
			text += fmt.Sprintf("; newest WAL stored %s ago", policy.FormatDuration(time.Duration(fr.AgeSeconds)*time.Second))
		}
	}
	var perf []string
	if fr.NewestTime != nil {
		w, cr := "", ""
		if lim := fr.Limit(); lim > 0 {
			w, cr = fmt.Sprintf("%.0f", (lim/2).Seconds()), fmt.Sprintf("%.0f", lim.Seconds())
		}
		perf = append(perf, fmt.Sprintf("newest_wal_age=%.0fs;%s;%s;0", fr.AgeSeconds, w, cr))
	}
	restorable := 0
	for _, b := range res.Backups {
		if b.Window != nil {
			restorable++
		}
	}
	minB := ""
	if out.Policy != nil && out.Policy.Policy.MinBackups > 0 {
		minB = fmt.Sprintf("%d:", out.Policy.Policy.MinBackups)
	}
	perf = append(perf, fmt.Sprintf("backups=%d;;;0", len(res.Backups)), fmt.Sprintf("restorable_backups=%d;;%s;0", restorable, minB))
	if out.Policy != nil {
		var unc time.Duration
		for _, u := range out.Policy.Uncovered {
			if u.Acknowledged == nil {
				unc += u.To.Sub(u.From.Time)
			}
		}
		perf = append(perf, fmt.Sprintf("uncovered=%.0fs;;0;0", unc.Seconds()), fmt.Sprintf("violations=%d;;0;0", len(out.Policy.Violations)))
	}
	gaps := 0
	for _, t := range res.Timelines {
		gaps += len(t.Gaps)
	}
	perf = append(perf, fmt.Sprintf("gaps=%d;;;0", gaps),
		fmt.Sprintf("errors=%d;;;0", finding.Count(res.Findings, finding.Error)),
		fmt.Sprintf("warnings=%d;;;0", finding.Count(res.Findings, finding.Warning)))
	if t, ok := c.Context.Value(startKey{}).(time.Time); ok {
		perf = append(perf, fmt.Sprintf("time=%.3fs;;;0", time.Since(t).Seconds()))
	}
	line := fmt.Sprintf("WALAUDIT %s - %s | %s", state, oneLine(text), strings.Join(perf, " "))
	fmt.Fprintln(c.App.Writer, line)
	if code == nagiosOK {
		return nil
	}
	return verdict(code, "%s", line)
}

func targetText(res *plan.Result) string {
	if res.Target.Value != "" {
		return res.Target.Type + ":" + res.Target.Value
	}
	return res.Target.Type
}

// renderPolicy prints check's policy, freshness and primary sections.
func renderPolicy(w io.Writer, out checkReport) {
	if rep := out.Policy; rep != nil {
		state := "HOLDS"
		switch {
		case rep.Undecided:
			state = "UNDECIDED"
		case !rep.Holds:
			state = "DOES NOT HOLD"
		}
		fmt.Fprintf(w, "\nPOLICY    %s (%s)\n", state, rep.Policy.Summary())
		if !rep.Holds && rep.Reason != "" {
			fmt.Fprintf(w, "          %s\n", rep.Reason)
		}
		if rep.Required != nil {
			fmt.Fprintf(w, "  required   %s .. %s UTC (the newest archived commit)\n", fmtT(rep.Required.From.Time), fmtT(rep.Required.To.Time))
		}
		for _, cv := range rep.Covered {
			fmt.Fprintf(w, "  covered    %s .. %s UTC\n", fmtT(cv.From.Time), fmtT(cv.To.Time))
		}
		for _, u := range rep.Uncovered {
			s := fmt.Sprintf("  uncovered  %s .. %s UTC: %s", fmtT(u.From.Time), fmtT(u.To.Time), u.Cause)
			if u.Acknowledged != nil {
				s += "; excused by the " + u.Acknowledged.Describe()
			}
			fmt.Fprintln(w, s)
		}
		for _, t := range rep.Targets {
			s := fmt.Sprintf("  target     %s %s", t.Target, strings.ToUpper(string(t.Verdict)))
			if t.Backup != "" {
				s += " from backup " + t.Backup
			} else {
				s += ": " + t.Reason
			}
			fmt.Fprintln(w, s)
		}
		fmt.Fprintf(w, "  backups    %d restorable of %d", rep.RestorableBackups, len(rep.Backups))
		if rep.Policy.MinBackups > 0 {
			fmt.Fprintf(w, " (at least %d required)", rep.Policy.MinBackups)
		}
		fmt.Fprintln(w)
	}
	if f := out.Freshness; f != nil {
		state := "FRESH"
		switch {
		case f.Stale:
			state = "STALE"
		case f.Aging:
			state = "AGING"
		}
		if f.NewestTime != nil {
			fmt.Fprintf(w, "\nFRESHNESS %s: newest WAL file %s stored %s ago (%s UTC), limit %s\n", state, f.NewestFile,
				policy.FormatDuration(time.Duration(f.AgeSeconds)*time.Second), fmtT(f.NewestTime.Time), f.MaxAge)
		} else {
			fmt.Fprintf(w, "\nFRESHNESS %s: the archive holds no WAL file\n", state)
		}
	}
	if p := out.Primary; p != nil {
		fmt.Fprintf(w, "\nPRIMARY   ")
		if p.InRecovery {
			fmt.Fprintln(w, "in recovery (a standby): no WAL position to compare")
		} else {
			fmt.Fprintf(w, "writing %s at %s; archive's newest %s; %d completed segments not archived\n", p.CurrentFile, p.CurrentLSN, orDash(p.ArchiveNewest), p.UnarchivedSegments)
		}
		fmt.Fprintf(w, "  archiver   %d archived (last %s), %d failed", p.ArchivedCount, orDash(p.LastArchivedWAL), p.FailedCount)
		if p.LastFailedWAL != "" {
			fmt.Fprintf(w, " (last %s)", p.LastFailedWAL)
		}
		if p.Failing {
			fmt.Fprint(w, ": FAILING")
		}
		fmt.Fprintln(w)
	}
}

func fmtT(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// errNoPolicy is returned by commands that need a policy when none is given.
var errNoPolicy = errors.New("no recovery policy given: pass --keep-window, --keep-since, --keep-target or --min-backups (or --config FILE)")
