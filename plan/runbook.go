package plan

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/backup"
	"github.com/walaudit/walaudit/plan/pgserver"
	"github.com/walaudit/walaudit/walname"
)

// Setting is one recovery setting of a runbook, with why it has its value.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"` // as written in postgresql.conf, quoted where a string
	Why   string `json:"why"`
}

// Runbook is a restore plan an operator can follow by hand, and that the
// drill executes.
type Runbook struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	// Backup is the chosen backup; Rejected says why each newer one cannot
	// reach the target.
	Backup   *BackupRef        `json:"backup"`
	Rejected []RejectedBackup  `json:"rejected"`
	Target   TargetJSON        `json:"target"`
	Path     []PathEntry       `json:"timeline_path"`
	Stop     *Stop             `json:"stop"`
	Requests []string          `json:"wal_requests"`
	Settings []Setting         `json:"recovery_settings"`
	Restore  []string          `json:"restore_steps"`
	Verify   []string          `json:"checklist"`
	Missing  []string          `json:"missing"`
	Findings []FindingSummary  `json:"findings"`
	Source   *backup.Backup    `json:"-"`
	Answer   *BackupAnswer     `json:"-"`
	Archive  string            `json:"archive"`
	Extra    map[string]string `json:"-"`
}

// RejectedBackup is a newer backup that cannot reach the target.
type RejectedBackup struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// FindingSummary is a finding as one line, for the runbook.
type FindingSummary struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Text     string `json:"text"`
}

// RestoreCommand is the restore_command a runbook recommends: walaudit's
// own fetcher, which refuses to mistake a store failure for the end of the
// archive.
func RestoreCommand(walaudit, archive string) string {
	return fmt.Sprintf("%s wal-fetch --archive %s %%f %%p", walaudit, ShellQuote(archive))
}

// ShellQuote quotes s for a POSIX shell unless it is plainly safe.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func confQuote(s string) string { return pgserver.Quote(s) }

// TargetSettings returns the recovery_target_* settings for a target,
// normalised: exactly one target setting (none for latest), a decimal
// xid, an LSN, a UTC time with microseconds.
func TargetSettings(t Target, inclusive bool, tli walname.TimelineID) []Setting {
	var out []Setting
	switch t.Kind {
	case TargetTime:
		out = append(out, Setting{"recovery_target_time", confQuote(t.Time.UTC().Format("2006-01-02 15:04:05.000000+00")), "the target, in UTC so the server's timezone setting cannot shift it"})
	case TargetLSN:
		out = append(out, Setting{"recovery_target_lsn", confQuote(t.LSN.String()), "the target"})
	case TargetXID:
		out = append(out, Setting{"recovery_target_xid", confQuote(fmt.Sprint(t.XID)), "the target (decimal, low 32 bits)"})
	case TargetName:
		out = append(out, Setting{"recovery_target_name", confQuote(t.Name), "the restore point (case-sensitive; the first one with this name wins)"})
	case TargetImmediate:
		out = append(out, Setting{"recovery_target", "'immediate'", "stop as soon as the backup is consistent"})
	}
	switch t.Kind {
	case TargetTime, TargetLSN, TargetXID:
		out = append(out, Setting{"recovery_target_inclusive", fmt.Sprint(inclusive), "stop after (true) or before (false) the target"})
	}
	if tli != 0 {
		out = append(out, Setting{"recovery_target_timeline", confQuote(tli.String()), "the timeline walaudit resolved; written as a number so later timelines in the archive cannot change it"})
	}
	if t.Kind != TargetLatest {
		out = append(out, Setting{"recovery_target_action", "'pause'", "stay read-only at the target so the data can be checked before promoting (no new timeline yet)"})
	}
	return out
}

// BuildRunbook turns a check's result into a runbook for its chosen backup.
// walauditBin is how the runbook invokes walaudit; dataDir where it
// restores.
func BuildRunbook(res *Result, arch *audit.Archive, req Request, walauditBin, dataDir string) *Runbook {
	rb := &Runbook{Verdict: res.Verdict, Reason: res.Reason, Backup: res.Backup, Target: res.Target, Path: res.TimelinePath,
		Stop: res.Stop, Missing: res.Missing, Archive: res.Archive, Rejected: []RejectedBackup{}, Requests: []string{}}
	if walauditBin == "" {
		walauditBin = "walaudit"
	}
	if dataDir == "" {
		dataDir = "/var/lib/postgresql/restore"
	}
	for i := range res.Backups {
		a := &res.Backups[i]
		if res.Backup != nil && a.ID == res.Backup.ID {
			rb.Answer = a
			break
		}
		rb.Rejected = append(rb.Rejected, RejectedBackup{ID: a.ID, Reason: a.Reason})
	}
	for _, f := range res.Findings {
		if f.Severity != "info" {
			rb.Findings = append(rb.Findings, FindingSummary{Severity: string(f.Severity), Code: f.Code, Text: f.String()})
		}
	}
	if rb.Answer == nil {
		return rb
	}
	for _, b := range arch.Backups {
		if b.ID == rb.Answer.ID {
			rb.Source = b
		}
	}
	rb.Requests = rb.Answer.Requests
	rb.Settings = append([]Setting{{"restore_command", confQuote(RestoreCommand(walauditBin, res.Archive)), "fetch, decompress and check each WAL file; exit 1 only when the archive really lacks it"}},
		TargetSettings(req.Target, req.Inclusive, rb.Answer.ResolvedTimeline)...)
	rb.Settings = append(rb.Settings,
		Setting{"archive_mode", "off", "a restored copy must never push WAL into the production archive"},
		Setting{"primary_conninfo", "''", "the restored server must not follow the production primary"})
	rb.Restore = restoreSteps(rb.Source, dataDir)
	rb.Restore = append(rb.Restore,
		fmt.Sprintf("touch %s/recovery.signal", dataDir),
		fmt.Sprintf("# append the recovery settings below to %s/postgresql.auto.conf (read last, so they win)", dataDir),
		fmt.Sprintf("chown -R postgres:postgres %s && chmod 700 %s", dataDir, dataDir),
		fmt.Sprintf("sudo -u postgres pg_ctl -D %s -l %s/restore.log start", dataDir, filepath.Dir(dataDir)))
	if res.Stop != nil {
		rb.Verify = append(rb.Verify,
			fmt.Sprintf("the server log says: %s", orStr(res.Stop.LogLine, "recovery "+res.Stop.Reason)),
			fmt.Sprintf("SELECT pg_last_wal_replay_lsn(); returns %s", res.Stop.LSN))
	}
	rb.Verify = append(rb.Verify,
		"SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state(); shows the server paused at the target (PostgreSQL 14+; 13: pg_is_wal_replay_paused())",
		"run your own checks on the data (walaudit drill --verify FILE automates this)",
		"only then promote: SELECT pg_wal_replay_resume(); (or pg_promote()) — this starts a new timeline",
		"before promoting a copy that may archive, make sure its archive_command cannot overwrite the production archive",
		"take a fresh base backup of the promoted server")
	return rb
}

// restoreSteps are the shell commands that put a pg_basebackup output in place.
func restoreSteps(b *backup.Backup, dataDir string) []string {
	if b == nil || b.Source == backup.SourceArchiveHistory {
		return []string{"# walaudit did not see this backup's files (only its .backup file in the archive):",
			fmt.Sprintf("# restore them with the tool that took the backup into %s", dataDir)}
	}
	steps := []string{fmt.Sprintf("install -d -m 700 %s", dataDir)}
	if b.Format == backup.FormatPlain {
		return append(steps, fmt.Sprintf("cp -a %s/. %s/", ShellQuote(b.Path), dataDir))
	}
	extract := func(file, dir string) string {
		p := ShellQuote(filepath.Join(b.Path, file))
		switch {
		case strings.HasSuffix(file, ".gz"):
			return fmt.Sprintf("tar -xzf %s -C %s", p, dir)
		case strings.HasSuffix(file, ".lz4"):
			return fmt.Sprintf("lz4 -dc %s | tar -xf - -C %s", p, dir)
		case strings.HasSuffix(file, ".zst"):
			return fmt.Sprintf("zstd -dc %s | tar -xf - -C %s", p, dir)
		}
		return fmt.Sprintf("tar -xf %s -C %s", p, dir)
	}
	suffix := ""
	if b.Compression != walname.CompressNone {
		suffix = "." + string(b.Compression)
	}
	steps = append(steps, extract("base.tar"+suffix, dataDir))
	if len(b.WALSegments) > 0 {
		steps = append(steps, fmt.Sprintf("# if the backup has pg_wal.tar: %s", extract("pg_wal.tar"+suffix, dataDir+"/pg_wal")))
	}
	for _, ts := range b.TablespaceMap {
		steps = append(steps, fmt.Sprintf("install -d -m 700 %s && %s   # tablespace %d (location from tablespace_map)",
			ShellQuote(ts.Path), extract(fmt.Sprintf("%d.tar%s", ts.OID, suffix), ShellQuote(ts.Path)), ts.OID))
	}
	return steps
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
