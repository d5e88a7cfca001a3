// Package policy decides whether a WAL archive keeps a recovery policy:
// a window of time in which every moment stays recoverable, targets that
// must stay reachable, a minimum number of restorable backups and
// acknowledged historical gaps. It also simulates deletions (prune-check,
// prune-plan), judges the archive's freshness and the primary's live view,
// and exports the state as Prometheus metrics. Every command shares one
// entry point, [Evaluate], on an [audit.Archive], loaded or simulated.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/walname"
)

// ErrBadPolicy is wrapped by every policy parse error (a usage error).
var ErrBadPolicy = errors.New("invalid recovery policy")

// Policy is what must stay recoverable. The zero value asks for nothing.
type Policy struct {
	// KeepWindow: every moment of the last KeepWindow, up to the newest
	// archived commit, must be recoverable by a time target.
	KeepWindow time.Duration `json:"keep_window,omitempty"`
	// KeepSince: every moment from KeepSince on, likewise.
	KeepSince time.Time `json:"keep_since,omitzero"`
	// KeepTargets must each be reachable from some backup.
	KeepTargets []plan.Target `json:"-"`
	// MinBackups is how many backups must stay restorable (reach their
	// consistency point with the archived WAL).
	MinBackups int `json:"min_backups,omitempty"`
	// MaxArchiveAge is the freshness limit: the newest archived WAL file
	// must be younger than this by its store time (0: not checked).
	MaxArchiveAge time.Duration `json:"max_archive_age,omitempty"`
	// Acknowledged are known, accepted historical gaps.
	Acknowledged []AckGap `json:"acknowledged_gaps,omitempty"`
}

// AckGap is an acknowledged gap: the segment files First..Last (one
// timeline) are known to be lost, and recovery to the moments that only
// they could serve is accepted as impossible.
type AckGap struct {
	First  string `json:"first" yaml:"first"`
	Last   string `json:"last" yaml:"last"`
	Reason string `json:"reason,omitempty" yaml:"reason"`
	By     string `json:"by,omitempty" yaml:"by"`
	At     string `json:"at,omitempty" yaml:"at"`
}

// Contains reports whether the segment file name (any stored form) lies
// inside the acknowledged range.
func (g AckGap) Contains(name string) bool {
	n, err := walname.Parse(name)
	if err != nil || (n.Kind != walname.KindSegment && n.Kind != walname.KindPartial) {
		return false
	}
	s := n.SegmentBase()
	// Same timeline (the first 8 hex digits), and 24-hex names order like
	// their segment numbers.
	return s[:8] == g.First[:8] && s >= g.First && s <= g.Last
}

// String renders the gap as the flag accepts it.
func (g AckGap) String() string {
	s := g.First
	if g.Last != g.First {
		s += ".." + g.Last
	}
	for _, kv := range [][2]string{{"reason", g.Reason}, {"by", g.By}, {"at", g.At}} {
		if kv[1] != "" {
			s += "; " + kv[0] + "=" + kv[1]
		}
	}
	return s
}

// Describe says who accepted the gap, when and why, for messages.
func (g AckGap) Describe() string {
	var parts []string
	if g.Reason != "" {
		parts = append(parts, g.Reason)
	}
	if g.By != "" {
		parts = append(parts, "by "+g.By)
	}
	if g.At != "" {
		parts = append(parts, "on "+g.At)
	}
	r := g.First
	if g.Last != g.First {
		r += ".." + g.Last
	}
	if len(parts) == 0 {
		return "acknowledged gap " + r
	}
	return fmt.Sprintf("acknowledged gap %s (%s)", r, strings.Join(parts, ", "))
}

func (g *AckGap) validate() error {
	if g.Last == "" {
		g.Last = g.First
	}
	for _, s := range []string{g.First, g.Last} {
		if !walname.IsSegmentName(s) {
			return fmt.Errorf("%w: acknowledged gap %q: want segment file names FIRST..LAST (24 upper-case hex digits)", ErrBadPolicy, s)
		}
	}
	if g.First[:8] != g.Last[:8] {
		return fmt.Errorf("%w: acknowledged gap %s..%s spans two timelines; list one range per timeline", ErrBadPolicy, g.First, g.Last)
	}
	if g.Last < g.First {
		return fmt.Errorf("%w: acknowledged gap %s..%s: the last file comes before the first", ErrBadPolicy, g.First, g.Last)
	}
	return nil
}

// ParseAckGap parses "FIRST[..LAST][; reason=TEXT][; by=WHO][; at=WHEN]".
func ParseAckGap(s string) (AckGap, error) {
	parts := strings.Split(s, ";")
	var g AckGap
	rng := strings.TrimSpace(parts[0])
	first, last, ok := strings.Cut(rng, "..")
	g.First = strings.TrimSpace(first)
	if ok {
		g.Last = strings.TrimSpace(last)
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return AckGap{}, fmt.Errorf("%w: acknowledged gap %q: %q is not key=value (reason, by, at)", ErrBadPolicy, s, p)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "reason":
			g.Reason = v
		case "by":
			g.By = v
		case "at":
			g.At = v
		default:
			return AckGap{}, fmt.Errorf("%w: acknowledged gap %q: unknown key %q (want reason, by, at)", ErrBadPolicy, s, k)
		}
	}
	if err := g.validate(); err != nil {
		return AckGap{}, err
	}
	return g, nil
}

// UnmarshalYAML accepts the flag's string form or a mapping with first,
// last, reason, by and at.
func (g *AckGap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := ParseAckGap(n.Value)
		if err != nil {
			return err
		}
		*g = v
		return nil
	}
	type plain AckGap
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*g = AckGap(p)
	return g.validate()
}

// Empty reports whether the policy asks for nothing beyond freshness.
func (p *Policy) Empty() bool {
	return p == nil || (p.KeepWindow == 0 && p.KeepSince.IsZero() && len(p.KeepTargets) == 0 && p.MinBackups == 0)
}

// HasRequirements reports whether anything at all is asked, freshness and
// acknowledged gaps included.
func (p *Policy) HasRequirements() bool {
	return p != nil && (!p.Empty() || p.MaxArchiveAge > 0 || len(p.Acknowledged) > 0)
}

// Summary renders the policy in one line, as flags.
func (p *Policy) Summary() string {
	if p == nil {
		return "none"
	}
	var s []string
	if p.KeepWindow > 0 {
		s = append(s, "keep-window "+FormatDuration(p.KeepWindow))
	}
	if !p.KeepSince.IsZero() {
		s = append(s, "keep-since "+p.KeepSince.UTC().Format(time.RFC3339))
	}
	for _, t := range p.KeepTargets {
		s = append(s, "keep-target "+t.String())
	}
	if p.MinBackups > 0 {
		s = append(s, fmt.Sprintf("min-backups %d", p.MinBackups))
	}
	if p.MaxArchiveAge > 0 {
		s = append(s, "max-archive-age "+FormatDuration(p.MaxArchiveAge))
	}
	if n := len(p.Acknowledged); n > 0 {
		s = append(s, fmt.Sprintf("%d acknowledged gap(s)", n))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// MarshalJSON adds the targets in their grammar.
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	out := struct {
		plain
		KeepWindow    string   `json:"keep_window,omitempty"`
		MaxArchiveAge string   `json:"max_archive_age,omitempty"`
		KeepSince     string   `json:"keep_since,omitempty"`
		KeepTargets   []string `json:"keep_targets,omitempty"`
	}{plain: plain(p)}
	if p.KeepWindow > 0 {
		out.KeepWindow = FormatDuration(p.KeepWindow)
	}
	if p.MaxArchiveAge > 0 {
		out.MaxArchiveAge = FormatDuration(p.MaxArchiveAge)
	}
	if !p.KeepSince.IsZero() {
		out.KeepSince = p.KeepSince.UTC().Format(plan.TimestampFormat)
	}
	for _, t := range p.KeepTargets {
		out.KeepTargets = append(out.KeepTargets, t.String())
	}
	return json.Marshal(out)
}

var durTokenRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)`)

// ParseDuration parses Go durations extended with d (24h) and w (7d), such
// as 7d, 2w, 1d12h or 90m. The result must be positive.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w: empty duration", ErrBadPolicy)
	}
	var total float64
	rest := in
	for rest != "" {
		m := durTokenRe.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("%w: duration %q: want e.g. 15m, 36h, 7d or 2w", ErrBadPolicy, s)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		unit := map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
			"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		total += v * float64(unit)
		rest = rest[len(m[0]):]
	}
	if total <= 0 || total > float64(1<<62) {
		return 0, fmt.Errorf("%w: duration %q must be positive", ErrBadPolicy, s)
	}
	return time.Duration(total), nil
}

// FormatDuration renders d with the largest exact units (7d, 1w, 36h, 15m).
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{7 * 24 * time.Hour, "w"}, {24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}

// Config is the optional configuration file: YAML whose keys are the
// flags' names.
type Config struct {
	KeepWindow    string   `yaml:"keep-window"`
	KeepSince     string   `yaml:"keep-since"`
	KeepTarget    []string `yaml:"keep-target"`
	MinBackups    int      `yaml:"min-backups"`
	MaxArchiveAge string   `yaml:"max-archive-age"`
	Acknowledged  []AckGap `yaml:"acknowledged-gap"`
}

// ParseConfig reads a configuration file's content. Unknown keys are
// errors, so that a typo cannot silently weaken the policy.
func ParseConfig(data []byte, name string) (*Policy, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPolicy, name, err)
	}
	p := &Policy{MinBackups: c.MinBackups, Acknowledged: c.Acknowledged}
	var err error
	if c.KeepWindow != "" {
		if p.KeepWindow, err = ParseDuration(c.KeepWindow); err != nil {
			return nil, fmt.Errorf("%s: keep-window: %w", name, err)
		}
	}
	if c.MaxArchiveAge != "" {
		if p.MaxArchiveAge, err = ParseDuration(c.MaxArchiveAge); err != nil {
			return nil, fmt.Errorf("%s: max-archive-age: %w", name, err)
		}
	}
	if c.KeepSince != "" {
		if p.KeepSince, err = plan.ParseTargetTime(c.KeepSince); err != nil {
			return nil, fmt.Errorf("%w: %s: keep-since: %w", ErrBadPolicy, name, err)
		}
	}
	for _, s := range c.KeepTarget {
		t, err := plan.ParseTarget(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: keep-target: %w", ErrBadPolicy, name, err)
		}
		p.KeepTargets = append(p.KeepTargets, t)
	}
	if p.MinBackups < 0 {
		return nil, fmt.Errorf("%w: %s: min-backups must not be negative", ErrBadPolicy, name)
	}
	return p, nil
}

// LoadConfig reads a configuration file.
func LoadConfig(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read config file: %w", ErrBadPolicy, err)
	}
	return ParseConfig(b, path)
}

// Merge returns base overridden by the set values of over: scalars of
// over win when set, lists are joined (duplicates dropped).
func Merge(base, over *Policy) *Policy {
	out := &Policy{}
	if base != nil {
		*out = *base
		out.KeepTargets = append([]plan.Target(nil), base.KeepTargets...)
		out.Acknowledged = append([]AckGap(nil), base.Acknowledged...)
	}
	if over == nil {
		return out
	}
	if over.KeepWindow > 0 {
		out.KeepWindow = over.KeepWindow
	}
	if !over.KeepSince.IsZero() {
		out.KeepSince = over.KeepSince
	}
	if over.MinBackups > 0 {
		out.MinBackups = over.MinBackups
	}
	if over.MaxArchiveAge > 0 {
		out.MaxArchiveAge = over.MaxArchiveAge
	}
	seen := map[string]bool{}
	for _, t := range out.KeepTargets {
		seen[t.String()] = true
	}
	for _, t := range over.KeepTargets {
		if !seen[t.String()] {
			seen[t.String()] = true
			out.KeepTargets = append(out.KeepTargets, t)
		}
	}
	seenG := map[string]bool{}
	for _, g := range out.Acknowledged {
		seenG[g.First+g.Last] = true
	}
	for _, g := range over.Acknowledged {
		if !seenG[g.First+g.Last] {
			seenG[g.First+g.Last] = true
			out.Acknowledged = append(out.Acknowledged, g)
		}
	}
	sort.SliceStable(out.Acknowledged, func(i, j int) bool { return out.Acknowledged[i].First < out.Acknowledged[j].First })
	return out
}

// AckFor returns the acknowledged gap holding every file name given, if any.
func (p *Policy) AckFor(names ...string) (AckGap, bool) {
	if p == nil || len(names) == 0 {
		return AckGap{}, false
	}
	for _, g := range p.Acknowledged {
		all := true
		for _, n := range names {
			if !g.Contains(n) {
				all = false
				break
			}
		}
		if all {
			return g, true
		}
	}
	return AckGap{}, false
}
