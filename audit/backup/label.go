package backup

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/walaudit/walaudit/walname"
)

// Keys of backup_label and backup history file lines (wire format, do not
// change).
const (
	keyStartWAL       = "START WAL LOCATION"
	keyStopWAL        = "STOP WAL LOCATION"
	keyCheckpoint     = "CHECKPOINT LOCATION"
	keyBackupMethod   = "BACKUP METHOD"
	keyBackupFrom     = "BACKUP FROM"
	keyStartTime      = "START TIME"
	keyLabel          = "LABEL"
	keyStartTimeline  = "START TIMELINE"
	keyStopTime       = "STOP TIME"
	keyStopTimeline   = "STOP TIMELINE"
	keyIncrementalLSN = "INCREMENTAL FROM LSN"
	keyIncrementalTLI = "INCREMENTAL FROM TLI"
)

var knownKeys = map[string]bool{
	keyStartWAL: true, keyStopWAL: true, keyCheckpoint: true, keyBackupMethod: true,
	keyBackupFrom: true, keyStartTime: true, keyLabel: true, keyStartTimeline: true,
	keyStopTime: true, keyStopTimeline: true, keyIncrementalLSN: true, keyIncrementalTLI: true,
}

// Values of BACKUP METHOD and BACKUP FROM that PostgreSQL writes.
const (
	MethodStreamed      = "streamed"        // non-exclusive backup (all of 15+)
	MethodPgStartBackup = "pg_start_backup" // exclusive backup, PostgreSQL 14 and older
	FromPrimary         = "primary"         // 14+
	FromMaster          = "master"          // 13 and older; same meaning as primary
	FromStandby         = "standby"
)

// Label is a parsed backup_label file or backup history file
// (NAME.OFFSET.backup). Both are written by the same PostgreSQL code and
// differ only in the STOP lines, which only history files carry (HasStop).
//
// Fields a file does not contain are zero: the STOP fields of a
// backup_label, the INCREMENTAL fields of a full backup, and any optional
// line an older or hand-edited file lacks. START WAL LOCATION and CHECKPOINT
// LOCATION (and STOP WAL LOCATION for a history file) are always set.
type Label struct {
	// StartLSN is START WAL LOCATION: the redo pointer of the backup's
	// checkpoint, where replay starts.
	StartLSN walname.LSN `json:"start_lsn"`
	// StartWALFile is the segment named in START WAL LOCATION.
	StartWALFile string `json:"start_wal_file"`
	// StopLSN is STOP WAL LOCATION (history files only): the end of the
	// XLOG_BACKUP_END record, i.e. the consistency point of a primary backup.
	StopLSN walname.LSN `json:"stop_lsn,omitzero"`
	// StopWALFile is the segment named in STOP WAL LOCATION. PostgreSQL
	// 13-15 name the segment holding the byte before StopLSN, 16+ the
	// segment holding StopLSN; they differ only on a segment boundary.
	StopWALFile string `json:"stop_wal_file,omitempty"`
	// CheckpointLSN is CHECKPOINT LOCATION: the checkpoint record recovery
	// reads first.
	CheckpointLSN walname.LSN `json:"checkpoint_lsn"`
	// BackupMethod is BACKUP METHOD as written ([MethodStreamed] or
	// [MethodPgStartBackup]); "" if the line is missing.
	BackupMethod string `json:"backup_method,omitempty"`
	// BackupFrom is BACKUP FROM as written ([FromPrimary], [FromMaster] or
	// [FromStandby]); "" if the line is missing.
	BackupFrom string `json:"backup_from,omitempty"`
	// StartTime and StopTime are START TIME and STOP TIME (stop: history
	// files only).
	StartTime Timestamp `json:"start_time,omitzero"`
	StopTime  Timestamp `json:"stop_time,omitzero"`
	// Label is the user's LABEL text. PostgreSQL does not forbid newlines in
	// it; lines after LABEL up to the next known key are appended, joined by
	// "\n".
	Label string `json:"label"`
	// StartTLI is START TIMELINE, or, if that line is missing, the
	// timeline of StartWALFile.
	StartTLI walname.TimelineID `json:"start_tli"`
	// StopTLI is STOP TIMELINE (history files only), or the timeline of
	// StopWALFile if that line is missing.
	StopTLI walname.TimelineID `json:"stop_tli,omitzero"`
	// IncrementalFromLSN and IncrementalFromTLI are set only for a
	// PostgreSQL 17+ incremental backup, which cannot be restored alone.
	IncrementalFromLSN walname.LSN        `json:"incremental_from_lsn,omitzero"`
	IncrementalFromTLI walname.TimelineID `json:"incremental_from_tli,omitzero"`
	// HasStop is true for a backup history file.
	HasStop bool `json:"has_stop"`
	// Extra holds lines with keys this package does not know, in file
	// order. They are kept, not rejected.
	Extra []Field `json:"extra,omitempty"`
}

// HistoryFile is a parsed backup history file: a [Label] with HasStop set.
type HistoryFile = Label

// Field is one "KEY: value" line with an unknown key.
type Field struct {
	Line  int    `json:"line"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// FromStandby reports whether the backup was taken on a standby, which is
// how PostgreSQL reads BACKUP FROM: only the literal "standby" counts.
func (l *Label) FromStandby() bool { return l.BackupFrom == FromStandby }

// Incremental reports whether this is a PostgreSQL 17+ incremental backup.
func (l *Label) Incremental() bool { return l.IncrementalFromLSN != 0 }

// ParseLabel parses a backup_label file. START WAL LOCATION and CHECKPOINT
// LOCATION are required; STOP lines are refused, as PostgreSQL would refuse
// them. See [Label] for what each field means.
func ParseLabel(data []byte) (*Label, error) { return parseLabel(data, false) }

// ParseHistoryFile parses a backup history file (NAME.OFFSET.backup). START
// WAL LOCATION, STOP WAL LOCATION and CHECKPOINT LOCATION are required.
func ParseHistoryFile(data []byte) (*HistoryFile, error) { return parseLabel(data, true) }

func parseLabel(data []byte, history bool) (*Label, error) {
	what := "backup_label"
	if history {
		what = "backup history file"
	}
	fail := func(line int, format string, args ...any) error {
		if line > 0 {
			return fmt.Errorf("%w: %s line %d: %s", ErrInvalidLabel, what, line, fmt.Sprintf(format, args...))
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalidLabel, what, fmt.Sprintf(format, args...))
	}

	l := &Label{HasStop: history}
	seen := make(map[string]int) // known key -> line number
	inLabel := false
	text := string(data)
	text = strings.TrimSuffix(text, "\n")
	var startTLIFile, stopTLIFile walname.TimelineID
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r") // a backup_label written on Windows has CRLF
		key, value, ok := cutKeyValue(line)
		if inLabel && (!ok || !knownKeys[key]) {
			l.Label += "\n" + line
			continue
		}
		inLabel = false
		if line == "" {
			continue
		}
		if !ok {
			return nil, fail(n, "%q is not a \"KEY: value\" line", clip(line))
		}
		if !knownKeys[key] {
			l.Extra = append(l.Extra, Field{Line: n, Key: key, Value: value})
			continue
		}
		if prev, dup := seen[key]; dup {
			return nil, fail(n, "duplicate %s (first on line %d)", key, prev)
		}
		seen[key] = n
		var err error
		switch key {
		case keyStartWAL:
			l.StartLSN, l.StartWALFile, startTLIFile, err = parseLocation(value)
		case keyStopWAL:
			if !history {
				return nil, fail(n, "%s appears only in backup history files", key)
			}
			l.StopLSN, l.StopWALFile, stopTLIFile, err = parseLocation(value)
		case keyCheckpoint:
			l.CheckpointLSN, err = walname.ParseLSN(value)
		case keyBackupMethod:
			l.BackupMethod, err = parseWord(value)
		case keyBackupFrom:
			l.BackupFrom, err = parseWord(value)
		case keyStartTime:
			l.StartTime, err = ParseTimestamp(value)
		case keyStopTime:
			if !history {
				return nil, fail(n, "%s appears only in backup history files", key)
			}
			l.StopTime, err = ParseTimestamp(value)
		case keyLabel:
			l.Label = value
			inLabel = true
		case keyStartTimeline:
			l.StartTLI, err = walname.ParseTimelineID(value)
		case keyStopTimeline:
			if !history {
				return nil, fail(n, "%s appears only in backup history files", key)
			}
			l.StopTLI, err = walname.ParseTimelineID(value)
		case keyIncrementalLSN:
			l.IncrementalFromLSN, err = walname.ParseLSN(value)
			if err == nil && l.IncrementalFromLSN == 0 {
				err = fmt.Errorf("LSN 0/0 is invalid")
			}
		case keyIncrementalTLI:
			l.IncrementalFromTLI, err = walname.ParseTimelineID(value)
		}
		if err != nil {
			return nil, fail(n, "%s: %v", key, err)
		}
	}

	required := []string{keyStartWAL, keyCheckpoint}
	if history {
		required = []string{keyStartWAL, keyStopWAL, keyCheckpoint}
	}
	for _, k := range required {
		if _, ok := seen[k]; !ok {
			return nil, fail(0, "missing %s line", k)
		}
	}

	// Cross-checks PostgreSQL makes (read_backup_label) or that follow from
	// how the values are produced.
	if n, ok := seen[keyStartTimeline]; ok && l.StartTLI != startTLIFile {
		return nil, fail(n, "START TIMELINE %d differs from the timeline %d of %s", l.StartTLI, startTLIFile, l.StartWALFile)
	}
	if l.StartTLI == 0 {
		l.StartTLI = startTLIFile
	}
	if history {
		if n, ok := seen[keyStopTimeline]; ok && l.StopTLI != stopTLIFile {
			return nil, fail(n, "STOP TIMELINE %d differs from the timeline %d of %s", l.StopTLI, stopTLIFile, l.StopWALFile)
		}
		if l.StopTLI == 0 {
			l.StopTLI = stopTLIFile
		}
		if l.StopLSN < l.StartLSN {
			return nil, fail(seen[keyStopWAL], "STOP WAL LOCATION %s is before START WAL LOCATION %s", l.StopLSN, l.StartLSN)
		}
	}
	if l.CheckpointLSN < l.StartLSN {
		return nil, fail(seen[keyCheckpoint], "CHECKPOINT LOCATION %s is before its redo pointer START WAL LOCATION %s", l.CheckpointLSN, l.StartLSN)
	}
	_, hasILSN := seen[keyIncrementalLSN]
	_, hasITLI := seen[keyIncrementalTLI]
	if hasILSN != hasITLI {
		return nil, fail(0, "%s and %s must appear together", keyIncrementalLSN, keyIncrementalTLI)
	}
	return l, nil
}

// CheckFileNames verifies that the WAL file names in START and STOP WAL
// LOCATION name the segments their LSNs fall in for segment size sz. The
// stop file may use either the face-value rule (16+) or the end-pointer rule
// (13-15).
func (l *Label) CheckFileNames(sz walname.SegmentSize) error {
	if err := sz.Validate(); err != nil {
		return fmt.Errorf("check wal file names: %w", err)
	}
	want := walname.SegmentName(l.StartTLI, l.StartLSN.Segment(sz), sz)
	if l.StartWALFile != want {
		return fmt.Errorf("%w: START WAL LOCATION %s names file %s, want %s with %s segments",
			ErrInvalidLabel, l.StartLSN, l.StartWALFile, want, sz)
	}
	if l.HasStop && l.StopWALFile != "" {
		face := walname.SegmentName(l.StopTLI, l.StopLSN.Segment(sz), sz)
		prev := walname.SegmentName(l.StopTLI, l.StopLSN.EndSegment(sz), sz)
		if l.StopWALFile != face && l.StopWALFile != prev {
			return fmt.Errorf("%w: STOP WAL LOCATION %s names file %s, want %s with %s segments",
				ErrInvalidLabel, l.StopLSN, l.StopWALFile, face, sz)
		}
	}
	return nil
}

// cutKeyValue splits "KEY: value". The blank after the colon is optional so
// that "LABEL:" with an empty, right-trimmed value still parses.
func cutKeyValue(line string) (key, value string, ok bool) {
	key, rest, ok := strings.Cut(line, ":")
	if !ok || key == "" {
		return "", "", false
	}
	return key, strings.TrimPrefix(rest, " "), true
}

// parseLocation parses "X/Y (file NAME)".
func parseLocation(v string) (walname.LSN, string, walname.TimelineID, error) {
	lsnText, rest, ok := strings.Cut(v, " (file ")
	name, closed := strings.CutSuffix(rest, ")")
	if !ok || !closed {
		return 0, "", 0, fmt.Errorf("%q: want \"X/Y (file NAME)\"", clip(v))
	}
	lsn, err := walname.ParseLSN(lsnText)
	if err != nil {
		return 0, "", 0, err
	}
	if !walname.IsSegmentName(name) {
		return 0, "", 0, fmt.Errorf("%q is not a WAL segment name", clip(name))
	}
	tli, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil || tli == 0 {
		return 0, "", 0, fmt.Errorf("%s has timeline 0", name)
	}
	return lsn, name, walname.TimelineID(tli), nil
}

// parseWord accepts one non-empty token without blanks.
func parseWord(v string) (string, error) {
	if v == "" || strings.ContainsAny(v, " \t") {
		return "", fmt.Errorf("%q: want one word", clip(v))
	}
	return v, nil
}

// clip shortens untrusted text quoted in error messages.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
