package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/walname"
)

// Oldest and newest PostgreSQL major versions this package knows.
const (
	MinMajor = 13
	MaxMajor = 18
)

// assemble turns the gathered files into Backup fields and findings.
func assemble(ctx context.Context, b *Backup, c *collected) {
	label := assembleLabel(b, c)
	assembleTablespaces(b, c)
	assembleVersion(b, c)
	ctrl := assembleControl(b, c)
	m := assembleManifest(ctx, b, c)

	if ctrl != nil && b.PGMajor != 0 && !slices.Contains(ctrl.MajorVersions(), b.PGMajor) {
		b.add(finding.Error, CodeInconsistent, c.version.display,
			fmt.Sprintf("PG_VERSION says %d but pg_control_version %d is written by PostgreSQL %v", b.PGMajor, ctrl.PGControlVersion, ctrl.MajorVersions()),
			"files from different clusters or versions were mixed")
	}
	if label != nil && ctrl != nil {
		crossCheckLabelControl(b, c, label, ctrl)
	}
	if label != nil && m != nil {
		crossCheckLabelManifest(b, c, label, m)
	}
	if m != nil && ctrl != nil && m.HasSystemIdentifier && m.SystemIdentifier != ctrl.SystemIdentifier {
		b.add(finding.Error, CodeSysIDMismatch, c.manifest.display,
			fmt.Sprintf("manifest System-Identifier %d differs from pg_control's %d", m.SystemIdentifier, ctrl.SystemIdentifier),
			"the manifest belongs to another cluster")
	}

	// Stop point: the manifest's newest WAL range, else, for a standby
	// backup, the minRecoveryPoint its pg_control was copied with.
	if m != nil {
		if lsn, tli, ok := m.StopPoint(); ok {
			b.StopLSN, b.StopTLI, b.StopSource = lsn, tli, StopFromManifest
		}
	}
	if b.StopLSN == 0 && b.FromStandby && ctrl != nil && ctrl.MinRecoveryPoint != 0 {
		b.StopLSN, b.StopTLI, b.StopSource = ctrl.MinRecoveryPoint, ctrl.MinRecoveryPointTLI, StopFromControl
	}
	if b.FromStandby && ctrl != nil && b.StopSource == StopFromManifest && b.StopLSN < ctrl.MinRecoveryPoint {
		b.add(finding.Error, CodeInconsistent, c.control.display,
			fmt.Sprintf("standby backup ends at %s (manifest) before the minRecoveryPoint %s of its pg_control", b.StopLSN, ctrl.MinRecoveryPoint), "")
	}

	assembleWAL(b, c, m)
}

func assembleLabel(b *Backup, c *collected) *Label {
	if !c.label.found {
		if !c.baseBroken {
			display := c.label.display
			if display == "" {
				display = b.Path
			}
			b.add(finding.Error, CodeLabelMissing, display, "backup has no backup_label",
				"without backup_label PostgreSQL runs crash recovery from pg_control's checkpoint and the restored cluster is silently corrupt; do not use this backup")
		}
		return nil
	}
	l, err := ParseLabel(c.label.data)
	if err != nil {
		b.add(finding.Error, CodeLabelInvalid, c.label.display, err.Error(), "")
		return nil
	}
	b.BackupLabel = l
	b.Label = l.Label
	b.StartLSN, b.CheckpointLSN, b.StartTLI = l.StartLSN, l.CheckpointLSN, l.StartTLI
	b.FromStandby, b.BackupMethod, b.StartTime = l.FromStandby(), l.BackupMethod, l.StartTime
	if l.Incremental() {
		b.Incremental, b.IncrementalFromLSN, b.IncrementalFromTLI = true, l.IncrementalFromLSN, l.IncrementalFromTLI
		b.Findings = append(b.Findings, incrementalFinding(c.label.display, l))
	}
	return l
}

func assembleTablespaces(b *Backup, c *collected) {
	if b.Format == FormatPlain {
		b.TablespaceMap = c.plainTablespaces
	}
	if c.tsmap.found {
		entries, err := ParseTablespaceMap(c.tsmap.data)
		if err != nil {
			b.add(finding.Error, CodeTablespaceMapInvalid, c.tsmap.display, err.Error(), "")
			return // nothing reliable to compare the tablespace archives with
		}
		b.TablespaceMap = entries
	}
	if b.Format != FormatTar {
		return
	}
	inMap := map[uint32]bool{}
	for _, e := range b.TablespaceMap {
		inMap[e.OID] = true
		if _, ok := c.tablespaceTars[e.OID]; !ok {
			b.add(finding.Error, CodeTablespaceMissing, c.tsmap.display,
				fmt.Sprintf("tablespace %d (%s) has no %d.tar in the backup", e.OID, e.Path, e.OID),
				"the tablespace's data is missing; this backup cannot be restored completely")
		}
	}
	if c.baseBroken {
		return
	}
	for oid, file := range c.tablespaceTars {
		if !inMap[oid] {
			b.add(finding.Error, CodeInconsistent, file,
				fmt.Sprintf("tablespace archive for OID %d is not listed in tablespace_map", oid),
				"PostgreSQL would not know where to restore this tablespace")
		}
	}
}

func assembleVersion(b *Backup, c *collected) {
	if !c.version.found {
		if !c.baseBroken {
			b.add(finding.Error, CodeIncomplete, displayOr(c.version.display, b.Path), "backup has no PG_VERSION", "")
		}
		return
	}
	text := strings.TrimSuffix(string(c.version.data), "\n")
	v, err := strconv.Atoi(text)
	if err != nil || v <= 0 || strconv.Itoa(v) != text {
		b.add(finding.Error, CodePGVersionInvalid, c.version.display, fmt.Sprintf("PG_VERSION %q is not a major version number", clip(text)), "")
		return
	}
	b.PGMajor = v
	if v < MinMajor || v > MaxMajor {
		b.add(finding.Warning, CodePGVersionInvalid, c.version.display,
			fmt.Sprintf("PostgreSQL %d is outside the supported %d to %d", v, MinMajor, MaxMajor), "")
	}
}

func assembleControl(b *Backup, c *collected) *Control {
	if !c.control.found {
		if !c.baseBroken {
			b.add(finding.Error, CodeIncomplete, displayOr(c.control.display, b.Path), "backup has no global/pg_control",
				"a backup without pg_control cannot be started")
		}
		return nil
	}
	ctrl, err := ParseControl(c.control.data)
	switch {
	case errors.Is(err, ErrControlCRC):
		b.Control = ctrl
		b.add(finding.Error, CodeControlCRC, c.control.display, err.Error(), "pg_control is damaged; PostgreSQL refuses to start with it")
		return nil
	case err != nil:
		b.add(finding.Error, CodeControlInvalid, c.control.display, err.Error(), "")
		return nil
	}
	b.Control = ctrl
	b.SystemID = ctrl.SystemIdentifier
	if len(c.control.data) != ControlFileSize {
		b.add(finding.Warning, CodeControlInvalid, c.control.display,
			fmt.Sprintf("pg_control is %d bytes, PostgreSQL writes %d", len(c.control.data), ControlFileSize), "")
	}
	if err := ctrl.XLogSegSize.Validate(); err != nil {
		b.add(finding.Error, CodeControlInvalid, c.control.display, fmt.Sprintf("xlog_seg_size: %v", err), "")
	} else {
		b.SegmentSize = ctrl.XLogSegSize
	}
	return ctrl
}

func assembleManifest(ctx context.Context, b *Backup, c *collected) *Manifest {
	if !c.manifest.found {
		display := c.manifest.display
		if display == "" {
			display = b.Path
		}
		b.add(finding.Warning, CodeManifestMissing, display, "backup has no backup_manifest",
			"without a manifest the backup cannot be verified and its stop LSN is unknown; take backups without --no-manifest")
		return nil
	}
	m, err := ParseManifest(c.manifest.data)
	switch {
	case errors.Is(err, ErrManifestChecksum):
		b.add(finding.Error, CodeManifestChecksum, c.manifest.display, err.Error(),
			"the manifest was modified or damaged; its file list and WAL ranges cannot be trusted")
	case err != nil:
		b.add(finding.Error, CodeManifestInvalid, c.manifest.display, err.Error(), "")
		return nil
	}
	b.Manifest, b.ManifestVerified = m, m.ChecksumVerified

	for _, f := range []struct {
		rel string
		fd  fileData
	}{{relLabel, c.label}, {relMap, c.tsmap}, {relVersion, c.version}, {relControl, c.control}} {
		if !f.fd.found {
			continue
		}
		entry, ok := m.File(f.rel)
		if !ok {
			b.add(finding.Warning, CodeFileMismatch, f.fd.display, fmt.Sprintf("%s is not listed in backup_manifest", f.rel), "")
			continue
		}
		if err := VerifyFile(entry, bytes.NewReader(f.fd.data)); err != nil {
			b.add(finding.Error, CodeFileMismatch, f.fd.display, err.Error(), "the file differs from what the server sent; do not trust this backup")
		}
	}
	if c.statManifest != nil {
		b.Findings = append(b.Findings, c.statManifest(ctx, m)...)
	}
	return m
}

func crossCheckLabelControl(b *Backup, c *collected, l *Label, ctrl *Control) {
	switch {
	case ctrl.CheckPoint < l.CheckpointLSN:
		b.add(finding.Error, CodeInconsistent, c.control.display,
			fmt.Sprintf("pg_control's latest checkpoint %s is older than the backup's CHECKPOINT LOCATION %s", ctrl.CheckPoint, l.CheckpointLSN),
			"pg_control is copied last, so it cannot predate the backup's checkpoint; files from different backups were mixed")
	case ctrl.CheckPoint == l.CheckpointLSN &&
		(ctrl.CheckPointCopy.Redo != l.StartLSN || ctrl.CheckPointCopy.ThisTimeLineID != l.StartTLI):
		b.add(finding.Error, CodeInconsistent, c.control.display,
			fmt.Sprintf("checkpoint %s has redo %s on timeline %d in pg_control, but backup_label says %s on timeline %d",
				ctrl.CheckPoint, ctrl.CheckPointCopy.Redo, ctrl.CheckPointCopy.ThisTimeLineID, l.StartLSN, l.StartTLI), "")
	}
	if b.SegmentSize != 0 {
		if err := l.CheckFileNames(b.SegmentSize); err != nil {
			b.add(finding.Error, CodeInconsistent, c.label.display, err.Error(), "")
		}
	}
}

func crossCheckLabelManifest(b *Backup, c *collected, l *Label, m *Manifest) {
	if len(m.WALRanges) == 0 {
		b.add(finding.Error, CodeInconsistent, c.manifest.display, "backup_manifest has no WAL-Ranges", "")
		return
	}
	if lsn, tli, _ := m.StartPoint(); lsn != l.StartLSN || tli != l.StartTLI {
		b.add(finding.Error, CodeInconsistent, c.manifest.display,
			fmt.Sprintf("oldest WAL range starts at %s on timeline %d, backup_label at %s on timeline %d", lsn, tli, l.StartLSN, l.StartTLI),
			"the manifest belongs to another backup")
	}
	for i := 0; i+1 < len(m.WALRanges); i++ {
		newer, older := m.WALRanges[i], m.WALRanges[i+1]
		if older.Timeline >= newer.Timeline || older.EndLSN != newer.StartLSN {
			b.add(finding.Error, CodeInconsistent, c.manifest.display,
				fmt.Sprintf("WAL ranges %d and %d do not chain: timeline %d ends at %s, timeline %d starts at %s",
					i+1, i+2, older.Timeline, older.EndLSN, newer.Timeline, newer.StartLSN), "")
		}
	}
}

// maxCheckedSegments bounds the segments checked per WAL range, so that a
// damaged manifest cannot make the check run for hours.
const maxCheckedSegments = 1 << 20

// assembleWAL lists the WAL carried in pg_wal and checks that it holds the
// WAL the manifest says the backup needs.
func assembleWAL(b *Backup, c *collected, m *Manifest) {
	for name := range c.wal {
		if walname.IsSegmentName(name) {
			b.WALSegments = append(b.WALSegments, name)
		} else {
			b.WALHistoryFiles = append(b.WALHistoryFiles, name)
		}
	}
	sort.Strings(b.WALSegments)
	sort.Strings(b.WALHistoryFiles)
	if len(b.WALSegments) == 0 || b.SegmentSize == 0 {
		return
	}
	var short []string
	for _, n := range b.WALSegments {
		if w := c.wal[n]; w.size != int64(b.SegmentSize) {
			short = append(short, fmt.Sprintf("%s (%d bytes)", n, w.size))
		}
	}
	if len(short) > 0 {
		b.add(finding.Warning, CodeWALIncomplete, b.Path,
			fmt.Sprintf("WAL segments in the backup do not have the segment size %d: %s", b.SegmentSize, summarize(short, 5)),
			"these segments are truncated; recovery needs complete copies from the archive")
	}
	if m == nil {
		return
	}
	var missing []string
	for i, r := range m.WALRanges {
		first, last := r.StartLSN.Segment(b.SegmentSize), r.EndLSN.EndSegment(b.SegmentSize)
		if r.EndLSN == r.StartLSN {
			last = first
		}
		if last-first > maxCheckedSegments {
			missing = append(missing, fmt.Sprintf("(timeline %d range %s-%s too long to check)", r.Timeline, r.StartLSN, r.EndLSN))
			continue
		}
		for seg := first; seg <= last && seg >= first; seg++ {
			name := walname.SegmentName(r.Timeline, seg, b.SegmentSize)
			if _, ok := c.wal[name]; ok {
				continue
			}
			// The segment where an older timeline ends also exists, with the
			// same bytes up to the switch, as the newer timeline's copy.
			if i > 0 && seg == last {
				if _, ok := c.wal[walname.SegmentName(m.WALRanges[i-1].Timeline, seg, b.SegmentSize)]; ok {
					continue
				}
			}
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		f := b.add(finding.Warning, CodeWALIncomplete, b.Path,
			fmt.Sprintf("the backup carries WAL but not all WAL needed to reach consistency; missing %s", summarize(missing, 5)),
			"the missing segments must come from the WAL archive")
		f.LSN = b.StartLSN
		f.Timeline = b.StartTLI
	}
}

func displayOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
