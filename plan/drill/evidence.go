package drill

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// KEY_EVIDENCE names. Values are single lines of text; LSNs are written
// X/Y, times RFC 3339 in UTC with microseconds, durations in seconds with
// three decimals, sizes in bytes.
const (
	// EvBackupID is the ID of the base backup restored.
	EvBackupID = "backup_id"
	// EvTarget is the recovery target in walaudit's grammar (time:…,
	// lsn:…, xid:…, name:…, immediate, latest).
	EvTarget = "target"
	// EvPredictedStopLSN is where walaudit's plan said recovery would stop.
	EvPredictedStopLSN = "predicted_stop_lsn"
	// EvActualStopLSN is pg_last_wal_replay_lsn() once the drill's server
	// paused or promoted.
	EvActualStopLSN = "actual_stop_lsn"
	// EvStopLine is the server log's "recovery stopping …" line.
	EvStopLine = "stop_line"
	// EvTimeline is the timeline recovery ended on.
	EvTimeline = "timeline"
	// EvWALFilesFetched counts the WAL files restore_command delivered.
	EvWALFilesFetched = "wal_files_fetched"
	// EvWALBytesFetched counts their bytes.
	EvWALBytesFetched = "wal_bytes_fetched"
	// EvPlanSeconds is the time spent planning (reading the archive).
	EvPlanSeconds = "plan_seconds"
	// EvRestoreSeconds is the time spent restoring the base backup.
	EvRestoreSeconds = "restore_seconds"
	// EvReplaySeconds is the time from server start to the pause or
	// promotion at the target.
	EvReplaySeconds = "replay_seconds"
	// EvVerifySeconds is the time spent running the checks.
	EvVerifySeconds = "verify_seconds"
	// EvNewestArchivedCommit is the time of the newest commit record in
	// the archive.
	EvNewestArchivedCommit = "newest_archived_commit"
	// EvRecoveryPointLagSeconds is how far the newest archived commit lies
	// behind the drill's start: the data a restore right now would lose.
	EvRecoveryPointLagSeconds = "recovery_point_lag_seconds"
	// EvFingerprint is [Fingerprint] of the check results.
	EvFingerprint = "fingerprint"
	// EvRecoveryState is how recovery ended: paused, promoted or failed.
	EvRecoveryState = "recovery_state"
	// EvScratchDir is the scratch directory of the drill.
	EvScratchDir = "scratch_dir"
	// EvFilesRestored counts the files written by the restore.
	EvFilesRestored = "files_restored"
	// EvBytesRestored counts their bytes.
	EvBytesRestored = "bytes_restored"
	// EvManifestVerified counts the files verified against backup_manifest
	// ("none" without a manifest).
	EvManifestVerified = "manifest_files_verified"
	// EvManifestProblems counts the mismatches with backup_manifest.
	EvManifestProblems = "manifest_problems"
	// EvTablespacesRemapped lists oid:scratch-path of remapped tablespaces.
	EvTablespacesRemapped = "tablespaces_remapped"
	// EvPreloadKept lists the shared_preload_libraries kept.
	EvPreloadKept = "preload_kept"
	// EvPreloadDropped lists the shared_preload_libraries dropped.
	EvPreloadDropped = "preload_dropped"
	// EvNeutralised lists the restored settings the drill overrode.
	EvNeutralised = "neutralised_settings"
	// EvPGVersion is the drill server's version.
	EvPGVersion = "pg_version"
	// EvChecksPassed counts the verification checks that passed.
	EvChecksPassed = "checks_passed"
	// EvChecksFailed counts those that failed or did not run.
	EvChecksFailed = "checks_failed"
	// EvAmcheck summarises amcheck over all databases.
	EvAmcheck = "amcheck"
	// EvVerdict is PASS or FAIL.
	EvVerdict = "verdict"
	// EvCheckPrefix starts the name of each check's evidence, check_<name>,
	// whose value is pass or fail; see [CheckEvidenceName].
	EvCheckPrefix = "check_"
)

// CheckEvidenceName is the KEY_EVIDENCE name of a check: check_<name>,
// with characters not allowed in names replaced by '_'.
func CheckEvidenceName(name string) string {
	var b strings.Builder
	b.WriteString(EvCheckPrefix)
	for _, r := range name {
		if isEvNameRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// KV is one KEY_EVIDENCE pair.
type KV struct {
	Name  string `json:"name"`  // letters, digits, '_', '.', '-'
	Value string `json:"value"` // any text; quoted in the transcript when needed
}

// Session is one transcript block: what was run, its outcome in one line,
// and the evidence it produced.
type Session struct {
	Command  string `json:"command"`  // the command or SQL run
	Result   string `json:"result"`   // its outcome in one line
	Evidence []KV   `json:"evidence"` // KEY_EVIDENCE, in order
}

var evNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func isEvNameRune(r rune) bool {
	return r == '_' || r == '.' || r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// Transcript markers.
const (
	sessionStart = "SESSION_START"
	sessionEnd   = "SESSION_END"
	commandTag   = "command: "
	resultTag    = "result: "
	evidenceTag  = "KEY_EVIDENCE:"
)

// needsQuote reports whether a value must be Go-quoted; commas and '='
// force quoting only in KEY_EVIDENCE values.
func needsQuote(s string, inPairs bool) bool {
	if s == "" || !utf8.ValidString(s) || s[0] == ' ' || s[len(s)-1] == ' ' || s[0] == '"' {
		return true
	}
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || r == '\\':
			return true
		case inPairs && (r == ',' || r == '=' || r == '"'):
			return true
		case r >= 0x80 && !strconv.IsPrint(r):
			return true
		}
	}
	return false
}

func quoteIf(s string, inPairs bool) string {
	if needsQuote(s, inPairs) {
		return strconv.Quote(s)
	}
	return s
}

// Format renders the session as its transcript block (ending in a
// newline). It fails for an evidence name that is not letters, digits,
// '_', '.' and '-'.
func (s Session) Format() (string, error) {
	var b strings.Builder
	b.WriteString(sessionStart + "\n")
	b.WriteString(commandTag + quoteIf(s.Command, false) + "\n")
	b.WriteString(resultTag + quoteIf(s.Result, false) + "\n")
	b.WriteString(evidenceTag)
	for i, kv := range s.Evidence {
		if !evNameRe.MatchString(kv.Name) {
			return "", fmt.Errorf("evidence name %q: want letters, digits, '_', '.' or '-'", kv.Name)
		}
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(kv.Name + "=" + quoteIf(kv.Value, true))
	}
	b.WriteString("\n" + sessionEnd + "\n")
	return b.String(), nil
}

// WriteTranscript writes the sessions as transcript blocks separated by
// blank lines.
func WriteTranscript(w io.Writer, sessions []Session) error {
	for i, s := range sessions {
		block, err := s.Format()
		if err != nil {
			return fmt.Errorf("session %d: %w", i+1, err)
		}
		if i > 0 {
			block = "\n" + block
		}
		if _, err := io.WriteString(w, block); err != nil {
			return err
		}
	}
	return nil
}

// ParseTranscript reads transcript blocks back; blank lines between
// blocks are skipped, anything else outside a block is an error.
func ParseTranscript(r io.Reader) ([]Session, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var out []Session
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		if line == "" {
			continue
		}
		if line != sessionStart {
			return nil, fmt.Errorf("line %d: want %s, got %q", n, sessionStart, clip(line))
		}
		var s Session
		var err error
		line, _ = next()
		if s.Command, err = parseTagged(line, commandTag); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		line, _ = next()
		if s.Result, err = parseTagged(line, resultTag); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		line, _ = next()
		rest, ok := strings.CutPrefix(line, evidenceTag)
		if !ok {
			return nil, fmt.Errorf("line %d: want %s, got %q", n, evidenceTag, clip(line))
		}
		if s.Evidence, err = ParseEvidence(rest); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if line, _ = next(); line != sessionEnd {
			return nil, fmt.Errorf("line %d: want %s, got %q", n, sessionEnd, clip(line))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func parseTagged(line, tag string) (string, error) {
	v, ok := strings.CutPrefix(line, tag)
	if !ok {
		return "", fmt.Errorf("want %q, got %q", strings.TrimSpace(tag), clip(line))
	}
	if strings.HasPrefix(v, `"`) {
		q, err := strconv.Unquote(v)
		if err != nil {
			return "", fmt.Errorf("%s bad quoted value %s: %w", strings.TrimSpace(tag), clip(v), err)
		}
		return q, nil
	}
	return v, nil
}

// ParseEvidence parses the text after "KEY_EVIDENCE:": name=value pairs
// separated by commas (the writer puts one space after each comma and
// after the colon; the parser takes any number of spaces there).
func ParseEvidence(s string) ([]KV, error) {
	var out []KV
	s = strings.TrimLeft(s, " ")
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("evidence pair %q: want name=value", clip(s))
		}
		name := s[:eq]
		if !evNameRe.MatchString(name) {
			return nil, fmt.Errorf("evidence name %q: want letters, digits, '_', '.' or '-'", clip(name))
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("evidence %s: bad quoted value %s", name, clip(s))
			}
			val, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = s[:end]
			if strings.ContainsAny(val, `="`) || val == "" || val != strings.TrimSpace(val) {
				return nil, fmt.Errorf("evidence %s: value %q must be quoted", name, clip(val))
			}
			s = s[end:]
		}
		out = append(out, KV{name, val})
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("evidence %s: want ',' after the value, got %q", name, clip(s))
		}
		s = strings.TrimLeft(s[1:], " ")
		if s == "" {
			return nil, errors.New("evidence ends with a comma")
		}
	}
	return out, nil
}

// Report is a drill's outcome for report.md and report.json.
type Report struct {
	// Title heads report.md (default "walaudit drill").
	Title string `json:"title"`
	// Pass is the verdict: PASS when true, FAIL otherwise.
	Pass bool `json:"-"`
	// Summary is a short paragraph: what was restored, to which target,
	// and what the checks found.
	Summary string `json:"summary"`
	// Started and Finished bound the drill.
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"` // when the report was made
	// Sessions are the transcript blocks, in order.
	Sessions []Session `json:"sessions"`
	// Checks are the verification checks' and amcheck's results.
	Checks []CheckResult `json:"checks"`
	// Fingerprint is [Fingerprint] of the checks.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Conclusions are statements another engineer can verify from the
	// evidence, one per item.
	Conclusions []string `json:"conclusions"`
}

// Verdict returns "PASS" or "FAIL".
func (r *Report) Verdict() string {
	if r.Pass {
		return "PASS"
	}
	return "FAIL"
}

// Files written by [WriteReport] into the report directory.
const (
	TranscriptFile = "transcript.txt" // the evidence transcript
	ReportMDFile   = "report.md"      // the human report
	ReportJSONFile = "report.json"    // the machine report
)

// KeyEvidence merges the sessions' evidence into one list in first-seen
// order; a name given again takes its latest value.
func (r *Report) KeyEvidence() []KV {
	idx := map[string]int{}
	var out []KV
	for _, s := range r.Sessions {
		for _, kv := range s.Evidence {
			if i, ok := idx[kv.Name]; ok {
				out[i].Value = kv.Value
				continue
			}
			idx[kv.Name] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// WriteReport writes transcript.txt, report.md and report.json into dir
// (created if missing).
func WriteReport(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	var t strings.Builder
	if err := WriteTranscript(&t, r.Sessions); err != nil {
		return err
	}
	js, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	for name, content := range map[string]string{
		TranscriptFile: t.String(),
		ReportMDFile:   r.Markdown(),
		ReportJSONFile: string(js) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// MarshalJSON renders report.json: the fields above plus "verdict" and
// "key_evidence" (the merged evidence as an object).
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	ev := map[string]string{}
	for _, kv := range r.KeyEvidence() {
		ev[kv.Name] = kv.Value
	}
	sessions := r.Sessions
	if sessions == nil {
		sessions = []Session{}
	}
	checks := r.Checks
	if checks == nil {
		checks = []CheckResult{}
	}
	conclusions := r.Conclusions
	if conclusions == nil {
		conclusions = []string{}
	}
	p := plain(*r)
	p.Sessions, p.Checks, p.Conclusions = sessions, checks, conclusions
	return json.MarshalIndent(struct {
		Verdict     string            `json:"verdict"`
		KeyEvidence map[string]string `json:"key_evidence"`
		plain
	}{r.Verdict(), ev, p}, "", "  ")
}

// Markdown renders report.md.
func (r *Report) Markdown() string {
	title := r.Title
	if title == "" {
		title = "walaudit drill"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n", mdText(title), r.Verdict())
	if r.Summary != "" {
		b.WriteString(r.Summary + "\n\n")
	}
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| verdict | **%s** |\n", r.Verdict())
	if !r.Started.IsZero() {
		fmt.Fprintf(&b, "| started | %s |\n", r.Started.UTC().Format(time.RFC3339))
	}
	if !r.Finished.IsZero() {
		fmt.Fprintf(&b, "| finished | %s |\n", r.Finished.UTC().Format(time.RFC3339))
	}
	if r.Fingerprint != "" {
		fmt.Fprintf(&b, "| fingerprint | `%s` |\n", r.Fingerprint)
	}
	b.WriteString("\n## Key evidence\n\n")
	if ev := r.KeyEvidence(); len(ev) > 0 {
		b.WriteString("| name | value |\n|---|---|\n")
		for _, kv := range ev {
			fmt.Fprintf(&b, "| %s | %s |\n", kv.Name, mdCell(kv.Value))
		}
	} else {
		b.WriteString("None recorded.\n")
	}
	if len(r.Checks) > 0 {
		b.WriteString("\n## Checks\n\n| check | database | result | expected | actual | seconds |\n|---|---|---|---|---|---|\n")
		for _, c := range r.Checks {
			verdict := "pass"
			actual := c.Actual
			if !c.Pass {
				verdict = "**FAIL**"
			}
			if c.Err != "" {
				verdict = "**ERROR**"
				actual = c.Err
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.3f |\n", mdCell(c.Name), mdCell(c.Database), verdict,
				mdCell(c.Expected), mdCell(actual), c.Duration.Seconds())
		}
	}
	if len(r.Conclusions) > 0 {
		b.WriteString("\n## Conclusions\n\n")
		for _, c := range r.Conclusions {
			b.WriteString("- " + mdText(c) + "\n")
		}
	}
	b.WriteString("\n## Transcript\n\nEach session as recorded in " + TranscriptFile + "; the commands can be rerun to check the results.\n\n")
	for _, s := range r.Sessions {
		block, err := s.Format()
		if err != nil {
			block = err.Error() + "\n"
		}
		fence := "```"
		for strings.Contains(block, fence) {
			fence += "`"
		}
		b.WriteString(fence + "text\n" + block + fence + "\n\n")
	}
	return b.String()
}

// mdCell makes text safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "<br>")
}

// mdText keeps text on its line.
func mdText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ")
}
