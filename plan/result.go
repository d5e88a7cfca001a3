package plan

import (
	"time"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// Verdict is the answer to "can we recover to this target?".
type Verdict string

// Verdicts. Undecided means walaudit could not tell (exit 2), never a guess.
const (
	Reachable   Verdict = "reachable"
	Unreachable Verdict = "unreachable"
	Undecided   Verdict = "undecided"
)

// TargetJSON is the target as the JSON report prints it.
type TargetJSON struct {
	Type             string             `json:"type"`
	Value            string             `json:"value"`
	Inclusive        bool               `json:"inclusive"`
	Timeline         string             `json:"timeline"`
	ResolvedTimeline walname.TimelineID `json:"resolved_timeline,omitempty"`
}

// PathEntry is one timeline of the path recovery follows: WAL in
// [BeginLSN, EndLSN) is read from this timeline. EndLSN is omitted for the
// target timeline itself (it runs to the end of WAL).
type PathEntry struct {
	Timeline walname.TimelineID `json:"timeline"`
	BeginLSN walname.LSN        `json:"begin_lsn"`
	EndLSN   *walname.LSN       `json:"end_lsn"`
}

// Stop is where recovery stops.
type Stop struct {
	// LSN is what pg_last_wal_replay_lsn() returns after the stop: the end
	// of the last replayed record.
	LSN walname.LSN `json:"lsn"`
	// Reason reads like PostgreSQL's log line, e.g. "stops after the first
	// record at or after 0/A002E8: Transaction COMMIT at 0/A002E8".
	Reason string `json:"reason"`
	// RecordLSN is the start of the record the decision was made on, if any.
	RecordLSN walname.LSN `json:"record_lsn,omitempty"`
	// Time is the commit/abort or restore point time of that record, if any.
	Time *Timestamp `json:"time,omitempty"`
	// XID is the transaction of that record, if any.
	XID uint32 `json:"xid,omitempty"`
	// Timeline is the timeline the stop lies on.
	Timeline walname.TimelineID `json:"timeline,omitempty"`
	// Approximate is set when the stop was judged from file names only
	// (--names-only): LSN is then the target, not a record boundary.
	Approximate bool `json:"approximate,omitempty"`
	// LogLine is the start of the line PostgreSQL logs at this stop, e.g.
	// "recovery stopping before commit of transaction 751" (followed by
	// ", time …" for transactions and restore points).
	LogLine string `json:"log_line,omitempty"`
}

// Window is a backup's recoverable window: from its consistency point to
// the end of the contiguous WAL after it on the resolved timeline path.
type Window struct {
	FromLSN  walname.LSN `json:"from_lsn"`
	ToLSN    walname.LSN `json:"to_lsn"`
	FromTime *Timestamp  `json:"from_time,omitempty"`
	ToTime   *Timestamp  `json:"to_time,omitempty"`
}

// BackupRef identifies a backup in reports.
type BackupRef struct {
	ID        string             `json:"id"`
	Label     string             `json:"label"`
	StartLSN  walname.LSN        `json:"start_lsn"`
	StopLSN   walname.LSN        `json:"stop_lsn,omitempty"`
	Timeline  walname.TimelineID `json:"timeline"`
	StartTime *Timestamp         `json:"start_time,omitempty"`
	StopTime  *Timestamp         `json:"stop_time,omitempty"`
	Source    string             `json:"source"`
	// DataSeen says whether the backup's files were read (--backups); a
	// backup known only from its .backup file in the archive was not.
	DataSeen bool `json:"data_seen"`
}

// BackupAnswer is one backup's answer to the target.
type BackupAnswer struct {
	BackupRef
	Verdict          Verdict            `json:"verdict"`
	Reason           string             `json:"reason"`
	ResolvedTimeline walname.TimelineID `json:"resolved_timeline,omitempty"`
	TimelinePath     []PathEntry        `json:"timeline_path"`
	Stop             *Stop              `json:"stop"`
	SegmentsNeeded   int                `json:"segments_needed"`
	Missing          []string           `json:"missing"`
	Window           *Window            `json:"window,omitempty"`
	// Files are the segment files recovery will read, in order.
	Files []string `json:"-"`
	// Requests are the names recovery passes to restore_command, in order,
	// history probes included, up to the stop (or the end of WAL).
	Requests []string `json:"-"`
	// EndOfWAL is where recovery from this backup would really end.
	EndOfWAL walname.LSN `json:"end_of_wal,omitempty"`
	// Suggestion says what would work instead (e.g. another --target-timeline).
	Suggestion string `json:"suggestion,omitempty"`
	// SystemID is the backup's database system identifier, when known.
	SystemID string `json:"system_identifier,omitempty"`
	// PreBackup is set when a time target before the backup's start was
	// proven to give the asked state from the WAL before the backup.
	PreBackup *PreBackupProof `json:"pre_backup_proof,omitempty"`
}

// Result is the answer of a check: the JSON schema documented in README.md.
type Result struct {
	Verdict     Verdict `json:"verdict"`
	Archive     string  `json:"archive"`
	SegmentSize uint32  `json:"segment_size"`
	SystemID    string  `json:"system_identifier,omitempty"`
	// Systems lists the database systems whose WAL the archive holds, when
	// more than one (pg_upgrade into the same archive).
	Systems        []SystemJSON      `json:"systems,omitempty"`
	Target         TargetJSON        `json:"target"`
	Backup         *BackupRef        `json:"backup"`
	Backups        []BackupAnswer    `json:"backups"`
	TimelinePath   []PathEntry       `json:"timeline_path"`
	Stop           *Stop             `json:"stop"`
	SegmentsNeeded int               `json:"segments_needed"`
	Missing        []string          `json:"missing"`
	Timelines      []TimelineSummary `json:"timelines"`
	Findings       []finding.Finding `json:"findings"`
	// Reason explains the verdict in one sentence.
	Reason string `json:"reason"`
}

// TimelineSummary is one timeline's coverage in the archive.
type TimelineSummary struct {
	Timeline   walname.TimelineID `json:"timeline"`
	Parent     walname.TimelineID `json:"parent,omitempty"`
	SwitchLSN  *walname.LSN       `json:"switch_lsn,omitempty"`
	HasHistory bool               `json:"has_history"`
	Segments   int                `json:"segments"`
	Ranges     []SegmentRange     `json:"ranges"`
	Gaps       []SegmentRange     `json:"gaps"`
	Partials   []string           `json:"partials,omitempty"`
	NewestFile string             `json:"newest_file,omitempty"`
}

// SegmentRange is a run of segments, by file name and LSN.
type SegmentRange struct {
	First    string      `json:"first"`
	Last     string      `json:"last"`
	StartLSN walname.LSN `json:"start_lsn"`
	EndLSN   walname.LSN `json:"end_lsn"`
	Count    int         `json:"count"`
}

// Timestamp is a point in time as walaudit's JSON prints it: RFC 3339 in
// UTC with exactly six fractional digits (PostgreSQL's precision), so
// scripts can compare strings.
type Timestamp struct{ time.Time }

// TimestampFormat is the layout of [Timestamp] in JSON.
const TimestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewTimestamp returns t in UTC, or nil for the zero time.
func NewTimestamp(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t.UTC()}
}

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimestampFormat) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	v, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(b))
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}

// SystemJSON is one database system's run of segments on one timeline.
type SystemJSON struct {
	SystemID     string             `json:"system_identifier"`
	Timeline     walname.TimelineID `json:"timeline"`
	FirstSegment string             `json:"first_segment"`
	LastSegment  string             `json:"last_segment"`
	Segments     int                `json:"segments"`
	// Backups are the IDs of the backups of this system.
	Backups []string `json:"backups"`
}
