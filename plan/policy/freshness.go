package policy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/plan"
	"github.com/walaudit/walaudit/walname"
)

// Finding codes of freshness and the primary's live view.
const (
	CodeArchiveStale       = "ARCHIVE_STALE"
	CodeArchiveAging       = "ARCHIVE_AGING"
	CodePrimaryWALPosition = "PRIMARY_WAL_POSITION"
	CodePrimaryInRecovery  = "PRIMARY_IN_RECOVERY"
	CodePrimarySysID       = "PRIMARY_SYSID_MISMATCH"
	CodeArchiverFailing    = "ARCHIVER_FAILING"
	CodeArchiverFailed     = "ARCHIVER_FAILED"
)

// Freshness is how recently the archive received WAL.
type Freshness struct {
	// MaxAge is the limit (0: not checked, the age is still reported).
	MaxAge string `json:"max_age,omitempty"`
	// NewestFile is the most recently stored WAL file (segment, .partial
	// or .history), by its store time.
	NewestFile string          `json:"newest_file,omitempty"`
	NewestTime *plan.Timestamp `json:"newest_time,omitempty"`
	// AgeSeconds is now minus NewestTime.
	AgeSeconds float64 `json:"age_seconds"`
	// Stale: older than MaxAge (error); Aging: older than half of it (warning).
	Stale    bool              `json:"stale"`
	Aging    bool              `json:"aging"`
	Findings []finding.Finding `json:"findings"`
	maxAge   time.Duration
	age      time.Duration
}

// Limit is the freshness limit checked (0: none).
func (f *Freshness) Limit() time.Duration { return f.maxAge }

// CheckFreshness judges the newest archived WAL file's store time
// (mtime, or S3 LastModified) against maxAge.
func CheckFreshness(inv *audit.Inventory, now time.Time, maxAge time.Duration) *Freshness {
	f := &Freshness{Findings: []finding.Finding{}, maxAge: maxAge}
	if maxAge > 0 {
		f.MaxAge = FormatDuration(maxAge)
	}
	hint := "check archive_command and pg_stat_archiver on the primary; an idle primary archives nothing unless archive_timeout is set below this limit"
	if inv.Newest == nil {
		if maxAge > 0 {
			f.Stale = true
			f.Findings = append(f.Findings, finding.Finding{Severity: finding.Error, Code: CodeArchiveStale,
				Message: "the archive holds no WAL file: nothing is being archived", Hint: hint})
		}
		return f
	}
	f.NewestFile = inv.Newest.Key
	f.NewestTime = &plan.Timestamp{Time: inv.Newest.ModTime.UTC()}
	f.age = now.Sub(inv.Newest.ModTime)
	if f.age < 0 {
		f.age = 0
	}
	f.AgeSeconds = f.age.Seconds()
	if maxAge <= 0 {
		return f
	}
	age := FormatDuration(f.age.Truncate(time.Second))
	switch {
	case f.age > maxAge:
		f.Stale = true
		f.Findings = append(f.Findings, finding.Finding{Severity: finding.Error, Code: CodeArchiveStale, File: inv.Newest.Key,
			Message: fmt.Sprintf("the newest archived WAL file was stored %s ago (%s UTC), more than the %s allowed: archiving has stopped and the recovery point objective is being broken now",
				age, fmtTime(inv.Newest.ModTime), FormatDuration(maxAge)), Hint: hint})
	case f.age > maxAge/2:
		f.Aging = true
		f.Findings = append(f.Findings, finding.Finding{Severity: finding.Warning, Code: CodeArchiveAging, File: inv.Newest.Key,
			Message: fmt.Sprintf("the newest archived WAL file was stored %s ago (%s UTC), more than half of the %s allowed",
				age, fmtTime(inv.Newest.ModTime), FormatDuration(maxAge)), Hint: hint})
	}
	return f
}

// Primary is the primary's live view against the archive.
type Primary struct {
	InRecovery  bool               `json:"in_recovery"`
	CurrentLSN  walname.LSN        `json:"current_lsn,omitempty"`
	CurrentFile string             `json:"current_file,omitempty"`
	Timeline    walname.TimelineID `json:"timeline,omitempty"`
	SystemID    string             `json:"system_identifier,omitempty"`
	// ArchiveNewest is the archive's newest segment (highest LSN) and
	// ArchiveEndLSN the end of it.
	ArchiveNewest string      `json:"archive_newest,omitempty"`
	ArchiveEndLSN walname.LSN `json:"archive_end_lsn,omitempty"`
	// UnarchivedSegments are the primary's completed segments after the
	// archive's newest one; UnarchivedBytes is CurrentLSN − ArchiveEndLSN.
	UnarchivedSegments int64 `json:"unarchived_segments"`
	UnarchivedBytes    int64 `json:"unarchived_bytes"`
	// pg_stat_archiver.
	ArchivedCount    int64           `json:"archived_count"`
	LastArchivedWAL  string          `json:"last_archived_wal,omitempty"`
	LastArchivedTime *plan.Timestamp `json:"last_archived_time,omitempty"`
	FailedCount      int64           `json:"failed_count"`
	LastFailedWAL    string          `json:"last_failed_wal,omitempty"`
	LastFailedTime   *plan.Timestamp `json:"last_failed_time,omitempty"`
	// Failing: the archiver's last attempt failed.
	Failing        bool              `json:"failing"`
	ArchiveMode    string            `json:"archive_mode,omitempty"`
	ArchiveTimeout string            `json:"archive_timeout,omitempty"`
	Findings       []finding.Finding `json:"findings"`
}

// QueryPrimary connects to the primary (a libpq connection string or URL,
// read by pgx) and compares its WAL position and pg_stat_archiver with
// the archive.
func QueryPrimary(ctx context.Context, dsn string, inv *audit.Inventory) (*Primary, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the primary: %w", err)
	}
	defer conn.Close(context.Background())
	p := &Primary{Findings: []finding.Finding{}}
	var lsn, file *string
	var lastArch, lastFail *time.Time
	var lastArchWAL, lastFailWAL *string
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
		CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
		current_setting('archive_mode'), current_setting('archive_timeout'),
		a.archived_count, a.last_archived_wal, a.last_archived_time, a.failed_count, a.last_failed_wal, a.last_failed_time
		FROM pg_stat_archiver a`).Scan(&p.InRecovery, &lsn, &file, &p.ArchiveMode, &p.ArchiveTimeout,
		&p.ArchivedCount, &lastArchWAL, &lastArch, &p.FailedCount, &lastFailWAL, &lastFail)
	if err != nil {
		return nil, fmt.Errorf("query the primary: %w", err)
	}
	var sysid int64
	if err := conn.QueryRow(ctx, `SELECT system_identifier FROM pg_control_system()`).Scan(&sysid); err == nil {
		p.SystemID = strconv.FormatUint(uint64(sysid), 10)
	}
	if lastArchWAL != nil {
		p.LastArchivedWAL = *lastArchWAL
	}
	if lastFailWAL != nil {
		p.LastFailedWAL = *lastFailWAL
	}
	if lastArch != nil {
		p.LastArchivedTime = &plan.Timestamp{Time: lastArch.UTC()}
	}
	if lastFail != nil {
		p.LastFailedTime = &plan.Timestamp{Time: lastFail.UTC()}
	}
	sz := inv.SegmentSize
	if p.SystemID != "" && inv.SystemID != 0 && p.SystemID != strconv.FormatUint(inv.SystemID, 10) {
		p.Findings = append(p.Findings, finding.Finding{Severity: finding.Error, Code: CodePrimarySysID,
			Message: fmt.Sprintf("the primary's system identifier is %s but the archive's segments are from %d", p.SystemID, inv.SystemID),
			Hint:    "--primary names another cluster than the one archiving here"})
	}
	// The archive's newest segment, by LSN.
	var newestSeg walname.SegNo
	var newestTLI walname.TimelineID
	found := false
	for tli, m := range inv.Segments {
		for seg := range m {
			if !found || seg > newestSeg || (seg == newestSeg && tli > newestTLI) {
				newestSeg, newestTLI, found = seg, tli, true
			}
		}
	}
	if found {
		p.ArchiveNewest = walname.SegmentName(newestTLI, newestSeg, sz)
		p.ArchiveEndLSN = sz.StartLSN(newestSeg + 1)
	}
	if p.InRecovery {
		p.Findings = append(p.Findings, finding.Finding{Severity: finding.Warning, Code: CodePrimaryInRecovery,
			Message: "the server named by --primary is in recovery (a standby): it has no current WAL position to compare with the archive",
			Hint:    "point --primary at the primary; a standby archives only with archive_mode = always"})
	} else if lsn != nil && file != nil {
		l, err := walname.ParseLSN(*lsn)
		if err != nil {
			return nil, fmt.Errorf("primary's WAL position %q: %w", *lsn, err)
		}
		p.CurrentLSN, p.CurrentFile = l, *file
		if n, err := walname.Parse(*file); err == nil {
			p.Timeline = n.TLI
		}
		cur := l.Segment(sz)
		if found && cur > newestSeg+1 {
			p.UnarchivedSegments = int64(cur - newestSeg - 1)
		}
		if found && l > p.ArchiveEndLSN {
			p.UnarchivedBytes = int64(l - p.ArchiveEndLSN)
		} else if !found {
			p.UnarchivedBytes = int64(l)
		}
		msg := fmt.Sprintf("the primary writes %s at %s (timeline %d); the archive's newest segment is %s", p.CurrentFile, l, p.Timeline, orNone(p.ArchiveNewest))
		if p.UnarchivedSegments > 0 {
			msg += fmt.Sprintf(": %d completed %s not archived yet (%s of WAL)", p.UnarchivedSegments, pluralWord(int(p.UnarchivedSegments), "segment is", "segments are"), FormatBytes(p.UnarchivedBytes))
		} else {
			msg += ": every completed segment is archived"
		}
		msg += fmt.Sprintf("; archive_mode %s, archive_timeout %s", p.ArchiveMode, p.ArchiveTimeout)
		p.Findings = append(p.Findings, finding.Finding{Severity: finding.Info, Code: CodePrimaryWALPosition, File: p.CurrentFile, LSN: l, Timeline: p.Timeline, Message: msg})
	}
	if p.FailedCount > 0 {
		p.Failing = p.LastFailedTime != nil && (p.LastArchivedTime == nil || p.LastFailedTime.After(p.LastArchivedTime.Time))
		when := ""
		if p.LastFailedTime != nil {
			when = " at " + fmtTime(p.LastFailedTime.Time) + " UTC"
		}
		if p.Failing {
			p.Findings = append(p.Findings, finding.Finding{Severity: finding.Error, Code: CodeArchiverFailing, File: p.LastFailedWAL,
				Message: fmt.Sprintf("the primary's archiver is failing: its last attempt, for %s%s, failed and nothing was archived since (%d failures since the statistics were reset)", p.LastFailedWAL, when, p.FailedCount),
				Hint:    "read the primary's log for archive_command's error; WAL piles up in pg_wal until it succeeds"})
		} else {
			p.Findings = append(p.Findings, finding.Finding{Severity: finding.Info, Code: CodeArchiverFailed, File: p.LastFailedWAL,
				Message: fmt.Sprintf("the primary's archiver failed %d %s since the statistics were reset (last for %s%s) but has archived since", p.FailedCount, pluralWord(int(p.FailedCount), "time", "times"), p.LastFailedWAL, when)})
		}
	}
	return p, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
