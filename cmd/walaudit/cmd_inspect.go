package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walaudit/walaudit/audit"
	"github.com/walaudit/walaudit/audit/codec"
	"github.com/walaudit/walaudit/audit/finding"
	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/walname"
)

// Finding codes of inspect; the WAL content codes are shared with check
// (see audit.ContentFinding).
const (
	codeForeignSegment     = audit.CodeForeignSegment
	codeTruncated          = audit.CodeTruncated
	codeWrongSize          = audit.CodeWrongSize
	codeUnsupportedVersion = audit.CodeUnsupportedVersion
	codeCorrupt            = audit.CodeCorrupt
	codeEndInSegment       = "WAL_END_IN_SEGMENT"
	codeNameNotSegment     = "NAME_NOT_SEGMENT"
	codeCompressionCorrupt = "COMPRESSION_CORRUPT"
	codeCompressionSuffix  = "COMPRESSION_MISMATCH"
)

// maxDecompressed bounds what is read from a compressed file: the largest
// segment size plus enough for the scan to see that a file is too long.
const maxDecompressed = int64(walname.MaxSegmentSize) + 1<<20

const inspectDescription = `Reads each FILE as one WAL segment file on its own and reports its size,
timeline, LSN range (first and last record, end of valid WAL), system
identifier, PostgreSQL version (from the page magic), records per resource
manager, commits, aborts and restore points, and every problem found, each
with its file, byte offset and LSN: wrong size, bad page magic, page address
mismatch, record CRC mismatch, broken xl_prev chain, torn record, WAL of an
unsupported version (PostgreSQL 12 and older). Reading stops at the first
invalid record, as recovery does.

Flags must come before the file names ("walaudit inspect --format json
FILE..."); a flag after a file name is refused.

Compressed files (.gz, .lz4, .zst, .bz2, .xz, ... or compressed content
under a plain segment name) are decompressed; byte offsets are then
positions in the decompressed segment. A file whose name is not a segment
name is inspected all the same: which segment it holds comes from its first
page, and a NAME_NOT_SEGMENT finding says so.

When several files are given, their system identifiers are compared: a file
whose identifier differs from the one most files carry (on a tie, the one
seen first) is reported as WAL_FOREIGN_SEGMENT. --system-identifier sets the
expected identifier instead.

Files are read in parallel and reported in the order given. --format json
prints one array with an object per file.

EXIT STATUS:
   0  no error finding
   1  at least one error finding (damaged, foreign or wrongly sized WAL)
   2  bad usage, a file that cannot be opened or read, or WAL of a version
      walaudit does not decode
`

func newInspectCommand() *cli.Command {
	return &cli.Command{
		Name:        "inspect",
		Usage:       "decode WAL segment files: what they hold and what is wrong with them",
		ArgsUsage:   "FILE...",
		Description: inspectDescription,
		Flags: []cli.Flag{
			formatFlag("table", "json"),
			&cli.BoolFlag{Name: "records", Usage: "list every record: LSN, resource manager, length, xid and description"},
			&cli.StringFlag{Name: "system-identifier", Usage: "expected database system `ID`: files of another system are reported"},
		},
		Action: runInspect,
	}
}

type inspectOptions struct {
	records bool
	// refSysID is the system identifier files must carry, 0 when all
	// files agree (or none is known); refHow says where it comes from.
	refSysID uint64
	refHow   string
}

// inspectJob is one file to inspect, with what a first look at its header
// found.
type inspectJob struct {
	path   string              // as given
	base   string              // file name, which ScanSegment matches against segment names
	suffix walname.Compression // compression promised by the name
	head   []byte              // the first bytes of the (decompressed) content
	sysID  uint64              // from the long page header in head, 0 if none
}

// inspectReport is what inspect says about one file; it is also the JSON
// object of the file.
type inspectReport struct {
	File        string `json:"file"`
	Compression string `json:"compression,omitempty"`
	// Size is the size of the (decompressed) content in bytes.
	Size int64 `json:"size"`
	// Segment is the name of the segment the file holds: its own name, or
	// from the first page when the name is not a segment name.
	Segment          string             `json:"segment,omitempty"`
	Timeline         walname.TimelineID `json:"timeline,omitempty"`
	SegmentSize      uint32             `json:"segment_size,omitempty"`
	PageSize         uint32             `json:"page_size,omitempty"`
	PageMagic        string             `json:"page_magic,omitempty"`
	PGMajor          int                `json:"pg_major,omitempty"`
	SystemIdentifier string             `json:"system_identifier"`
	StartLSN         *walname.LSN       `json:"start_lsn,omitempty"`
	FirstLSN         *walname.LSN       `json:"first_lsn"`
	LastLSN          *walname.LSN       `json:"last_lsn"`
	EndLSN           *walname.LSN       `json:"end_lsn"`
	// EndReason says why valid WAL ends at EndLSN: "switch" (XLOG_SWITCH),
	// "segment_end" (read to the end of the segment), "zeroed" (never
	// written) or "invalid" (damage, see findings).
	EndReason             string            `json:"end_reason,omitempty"`
	EndsWithSwitch        bool              `json:"ends_with_switch"`
	ContinuedFromPrevious bool              `json:"continued_from_previous"`
	ContinuesIntoNext     bool              `json:"continues_into_next"`
	PartialRecordLSN      *walname.LSN      `json:"partial_record_lsn,omitempty"`
	Records               int               `json:"records"`
	RecordsByRmgr         map[string]int    `json:"records_by_rmgr"`
	Commits               []xactJSON        `json:"commits"`
	Aborts                []xactJSON        `json:"aborts"`
	RestorePoints         []restoreJSON     `json:"restore_points"`
	Findings              []finding.Finding `json:"findings"`
	RecordList            []recordJSON      `json:"record_list,omitempty"`
	// Error says why the file could not be inspected (exit 2).
	Error string `json:"error,omitempty"`

	undecided bool // unreadable, or a version walaudit does not decode
}

type xactJSON struct {
	XID      uint32      `json:"xid"`
	Time     string      `json:"time"`
	LSN      walname.LSN `json:"lsn"`
	Prepared bool        `json:"prepared"`
	GID      string      `json:"gid,omitempty"`
}

type restoreJSON struct {
	Name string      `json:"name"`
	Time string      `json:"time"`
	LSN  walname.LSN `json:"lsn"`
}

type recordJSON struct {
	LSN  walname.LSN `json:"lsn"`
	Rmgr string      `json:"rmgr"`
	// Len is xl_tot_len; RecLen leaves out full-page images, as
	// pg_waldump's "len (rec/tot)".
	Len    uint32 `json:"len"`
	RecLen int    `json:"rec_len"`
	XID    uint32 `json:"xid"`
	Desc   string `json:"desc"`
}

// rfc3339Micro is RFC 3339 in UTC with microseconds, PostgreSQL's precision.
const rfc3339Micro = "2006-01-02T15:04:05.000000Z07:00"

func fmtTime(t time.Time) string { return t.UTC().Format(rfc3339Micro) }

func runInspect(c *cli.Context) error {
	format := c.String("format")
	if format != "table" && format != "json" {
		return usagef("invalid --format %q: want table or json", format)
	}
	files := c.Args().Slice()
	if len(files) == 0 {
		return usagef("inspect needs at least one FILE (walaudit inspect [flags] FILE...)")
	}
	// urfave/cli stops parsing flags at the first file name, so a flag
	// after one would be taken for a file name.
	for _, f := range files {
		if strings.HasPrefix(f, "-") && len(f) > 1 {
			if _, err := os.Stat(f); err != nil {
				return usagef("%q follows the file names: flags must come before the file names (walaudit inspect [flags] FILE...)", f)
			}
		}
	}
	opts := inspectOptions{records: c.Bool("records")}
	if s := c.String("system-identifier"); s != "" {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil || id == 0 {
			return usagef("invalid --system-identifier %q: want the decimal number pg_controldata prints", s)
		}
		opts.refSysID, opts.refHow = id, "given with --system-identifier"
	}

	ctx := c.Context
	workers := min(runtime.GOMAXPROCS(0), len(files))
	jobs, err := prepareInspect(ctx, files, workers)
	if err != nil {
		return err
	}
	if opts.refSysID == 0 {
		opts.refSysID, opts.refHow = referenceSysID(jobs)
	}

	w := c.App.Writer
	var errs, warns, undecided, withErrors int
	first := true
	if format == "json" {
		if _, err := io.WriteString(w, "[\n"); err != nil {
			return err
		}
	}
	err = forEachOrdered(ctx, len(jobs), workers, 2*workers,
		func(ctx context.Context, i int) *inspectReport { return inspectFile(ctx, jobs[i], opts) },
		func(_ int, rep *inspectReport) error {
			e := finding.Count(rep.Findings, finding.Error)
			errs += e
			warns += finding.Count(rep.Findings, finding.Warning)
			if e > 0 {
				withErrors++
			}
			if rep.undecided {
				undecided++
			}
			defer func() { first = false }()
			if format == "json" {
				b, err := json.MarshalIndent(rep, "  ", "  ")
				if err != nil {
					return err
				}
				sep := "  "
				if !first {
					sep = ",\n  "
				}
				_, err = fmt.Fprintf(w, "%s%s", sep, b)
				return err
			}
			if !first {
				fmt.Fprintln(w)
			}
			return renderInspect(w, rep, opts.records)
		})
	if format == "json" {
		end := "\n]\n"
		if first {
			end = "]\n"
		}
		if _, werr := io.WriteString(w, end); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if format == "table" && len(jobs) > 1 {
		fmt.Fprintf(w, "\n%d files: %d with errors, %d error and %d warning findings", len(jobs), withErrors, errs, warns)
		if undecided > 0 {
			fmt.Fprintf(w, ", %d not inspected", undecided)
		}
		fmt.Fprintln(w)
	}
	switch {
	case undecided > 0:
		return verdict(exitUndecided, "%d of %d files could not be inspected", undecided, len(jobs))
	case errs > 0:
		return verdict(exitNotOK, "%d error findings in %d of %d files", errs, withErrors, len(jobs))
	}
	return nil
}

// prepareInspect makes sure every file can be opened, before anything is
// printed, and reads the start of each to learn its system identifier.
func prepareInspect(ctx context.Context, files []string, workers int) ([]*inspectJob, error) {
	jobs := make([]*inspectJob, len(files))
	for i, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", p, unwrapPath(err))
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", p, unwrapPath(err))
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("cannot inspect %s: not a regular file", p)
		}
		base := filepath.Base(p)
		jobs[i] = &inspectJob{path: p, base: base, suffix: suffixOf(base)}
	}
	err := forEachOrdered(ctx, len(jobs), workers, len(jobs),
		func(ctx context.Context, i int) struct{} {
			j := jobs[i]
			if f, head := openPlain(j); f != nil {
				// Uncompressed: no decompressor (and its buffer) needed.
				j.head = head
				f.Close()
				if h, ok := walHeader(j.head); ok && h.IsLong() {
					j.sysID = h.SysID
				}
				return struct{}{}
			}
			cr, err := openContent(ctx, j.path, j.suffix)
			if err != nil {
				return struct{}{} // the scan reports it
			}
			defer cr.Close()
			buf := make([]byte, wal.LongPageHeaderSize)
			n, _ := io.ReadFull(cr, buf)
			j.head = buf[:n]
			if h, ok := walHeader(j.head); ok && h.IsLong() {
				j.sysID = h.SysID
			}
			return struct{}{}
		},
		func(int, struct{}) error { return nil })
	return jobs, err
}

// openPlain opens the file of j when its content is uncompressed WAL (or
// anything codec.Open passes through unchanged) under a name without a
// compression suffix, with its first bytes; nil when it is not, or cannot
// be opened (the ordinary path then says why).
func openPlain(j *inspectJob) (*os.File, []byte) {
	if j.suffix != walname.CompressNone {
		return nil, nil
	}
	f, err := os.Open(j.path)
	if err != nil {
		return nil, nil
	}
	head, ok := audit.PlainHead(f)
	if !ok {
		f.Close()
		return nil, nil
	}
	return f, head
}

// unwrapPath drops the *fs.PathError wrapper, whose path the message
// already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// walHeader decodes a page header at the start of head if it looks like
// WAL of any version: a 0xD0xx/0xD1xx magic.
func walHeader(head []byte) (wal.PageHeader, bool) {
	if len(head) < wal.LongPageHeaderSize {
		return wal.PageHeader{}, false
	}
	h, err := wal.DecodePageHeader(head)
	if err != nil {
		return h, false
	}
	if _, err := wal.MajorFromMagic(h.Magic); err != nil && !errors.Is(err, wal.ErrUnsupportedVersion) {
		return h, false
	}
	return h, true
}

// referenceSysID picks the identifier most files carry (on a tie, the one
// seen first); 0 when they all agree.
func referenceSysID(jobs []*inspectJob) (uint64, string) {
	count := map[uint64]int{}
	var order []uint64
	known := 0
	for _, j := range jobs {
		if j.sysID == 0 {
			continue
		}
		if count[j.sysID] == 0 {
			order = append(order, j.sysID)
		}
		count[j.sysID]++
		known++
	}
	if len(order) < 2 {
		return 0, ""
	}
	ref := order[0]
	for _, id := range order[1:] {
		if count[id] > count[ref] {
			ref = id
		}
	}
	how := fmt.Sprintf("carried by %d of the %d files given", count[ref], known)
	if count[ref]*2 <= known {
		how = fmt.Sprintf("carried by %d of the %d files given, the first one seen of those most common", count[ref], known)
	}
	return ref, how
}

// suffixOf returns the compression suffix of a file name, also for names
// that are not archive file names.
func suffixOf(base string) walname.Compression {
	if n, err := walname.Parse(base); err == nil {
		return n.Compression
	}
	for _, c := range codec.All() {
		if s := c.Suffix(); s != "" && strings.HasSuffix(base, "."+string(s)) {
			return s
		}
	}
	return walname.CompressNone
}

// content is the decompressed content of a file, read with ctx checked and
// bytes counted.
type content struct {
	ctx      context.Context
	f        *os.File
	r        io.ReadCloser
	codec    codec.Codec
	mismatch error // the suffix promised another format than the content has
	// damage is why decompression stopped early; Read then reports the
	// end of the file, so that the WAL before the damage is still read.
	damage error
	n      int64
}

func (c *content) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.damage != nil {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && isContentDamage(err) {
		c.damage = err
		err = io.EOF
	}
	return n, err
}

func (c *content) Close() error {
	err := c.r.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// openContent opens path and decompresses it as its suffix says (or as its
// magic says when there is no suffix). When the suffix promises a format
// the content is not in, the content is read as what it is and the
// mismatch noted.
func openContent(ctx context.Context, path string, suffix walname.Compression) (*content, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	dec, c, err := codec.Open(f, suffix)
	var mismatch error
	if errors.Is(err, codec.ErrMismatch) {
		mismatch = err
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			f.Close()
			return nil, serr
		}
		dec, c, err = codec.Open(f, walname.CompressNone)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if c != codec.None {
		dec = codec.LimitReader(dec, maxDecompressed)
	}
	return &content{ctx: ctx, f: f, r: dec, codec: c, mismatch: mismatch}, nil
}

// isContentDamage reports whether a read error is damage of the file
// rather than a failure to read it.
func isContentDamage(err error) bool {
	return errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrTooLarge)
}

func newReport(j *inspectJob) *inspectReport {
	return &inspectReport{
		File:          j.path,
		RecordsByRmgr: map[string]int{},
		Commits:       []xactJSON{},
		Aborts:        []xactJSON{},
		RestorePoints: []restoreJSON{},
		Findings:      []finding.Finding{},
	}
}

// inspectFile scans one file; it never fails: what went wrong is in the
// report.
func inspectFile(ctx context.Context, j *inspectJob, opts inspectOptions) *inspectReport {
	rep := newReport(j)
	defer func() { finding.Sort(rep.Findings) }()
	name, nameErr := walname.Parse(j.base)
	isSegName := nameErr == nil && (name.Kind == walname.KindSegment || name.Kind == walname.KindPartial)
	if !isSegName {
		rep.add(finding.Finding{Severity: finding.Info, Code: codeNameNotSegment, File: j.path,
			Message: fmt.Sprintf("%s is not a WAL segment file name: inspected without taking a segment number or timeline from the name", j.base),
			Hint:    "which segment it holds comes from its first page address"})
	}

	var (
		sum *wal.SegmentSummary
		err error
		// size reads the content to its end and returns its size (for
		// WAL of a version the scan does not read); damage is why
		// decompression stopped early.
		size   func() int64
		damage error
	)
	if f, _ := openPlain(j); f != nil {
		// Uncompressed, the usual case: the scan takes the file itself,
		// which saves copying its bytes.
		defer f.Close()
		if err := ctx.Err(); err != nil {
			rep.fail(err)
			return rep
		}
		sum, err = wal.ScanSegmentFile(f, j.base, wal.Options{})
		size = func() int64 {
			if sum == nil {
				return 0
			}
			return sum.Size // a scan that refuses the version reads all
		}
	} else {
		cr, err := openContent(ctx, j.path, j.suffix)
		if err != nil {
			if isContentDamage(err) {
				rep.add(compressionFinding(j.path, err))
				return rep
			}
			rep.fail(err)
			return rep
		}
		defer cr.Close()
		if cr.codec != codec.None {
			rep.Compression = cr.codec.Name()
		}
		if cr.mismatch != nil {
			rep.add(finding.Finding{Severity: finding.Error, Code: codeCompressionSuffix, File: j.path, Message: cr.mismatch.Error(),
				Hint: "the tool that archived this file will not be able to restore it; inspected as what the content is"})
		}
		sum, err = wal.ScanSegment(cr, j.base, wal.Options{})
		damage = cr.damage
		size = func() int64 {
			_, _ = io.Copy(io.Discard, cr)
			return cr.n
		}
	}

	var ce *wal.ContentError
	switch {
	case err == nil:
	case errors.As(err, &ce) && errors.Is(err, wal.ErrUnsupportedVersion):
		rep.fromHead(j, size())
		rep.add(finding.Finding{Severity: finding.Error, Code: codeUnsupportedVersion, File: j.path, LSN: ce.LSN,
			Message: ce.Err.Error(), Hint: "walaudit decodes WAL of PostgreSQL 13 to 18"}.At(ce.Offset))
		rep.undecided = true
		return rep
	default:
		rep.fail(err)
		return rep
	}
	rep.fromSummary(j, sum, name, isSegName)
	if damage != nil {
		rep.add(compressionFinding(j.path, damage))
	}
	if opts.refSysID != 0 && j.sysID != 0 && j.sysID != opts.refSysID {
		f := finding.Finding{Severity: finding.Error, Code: codeForeignSegment, File: j.path, Timeline: sum.TLI,
			Message: fmt.Sprintf("system identifier %d differs from %d (%s): this file belongs to another database cluster", j.sysID, opts.refSysID, opts.refHow),
			Hint:    "recovery refuses it (\"WAL file is from different database system\"); find this cluster's own copy of the segment"}
		if rep.StartLSN != nil {
			f.LSN = *rep.StartLSN + 24
		}
		rep.add(f.At(24)) // xlp_sysid in the long page header
	}
	if opts.records && sum.SegmentSize != 0 && sum.Major != 0 {
		list, err := listRecords(ctx, j, sum)
		if err != nil && !isContentDamage(err) {
			rep.fail(fmt.Errorf("listing records: %w", err))
		}
		rep.RecordList = list
	}
	return rep
}

func (r *inspectReport) add(f finding.Finding) { r.Findings = append(r.Findings, f) }

func (r *inspectReport) fail(err error) {
	r.Error = err.Error()
	r.undecided = true
}

func compressionFinding(path string, err error) finding.Finding {
	if errors.Is(err, codec.ErrTooLarge) {
		return finding.Finding{Severity: finding.Error, Code: codeWrongSize, File: path,
			Message: fmt.Sprintf("decompressed content is larger than the largest segment size (%s): %v", walname.MaxSegmentSize, err)}
	}
	return finding.Finding{Severity: finding.Error, Code: codeCompressionCorrupt, File: path, Message: err.Error(),
		Hint: "the compressed file is damaged: restore_command would fail on it; find an intact copy"}
}

// fromHead fills in what the first page header says, for files the scan
// could not read.
func (r *inspectReport) fromHead(j *inspectJob, size int64) {
	r.Size = size
	if len(j.head) >= 2 {
		magic := binary.LittleEndian.Uint16(j.head)
		r.PageMagic = fmt.Sprintf("%04X", magic)
		if major, err := wal.MajorFromMagic(magic); err == nil {
			r.PGMajor = major
		}
	}
	if h, ok := walHeader(j.head); ok {
		r.Timeline = h.TLI
		if h.IsLong() {
			r.SystemIdentifier = strconv.FormatUint(h.SysID, 10)
			if walname.SegmentSize(h.SegSize).Validate() == nil {
				r.SegmentSize = h.SegSize
			}
		}
	}
}

// fromSummary fills in what the scan found; segName is set when the file
// name is a segment (or .partial) name.
func (r *inspectReport) fromSummary(j *inspectJob, sum *wal.SegmentSummary, name walname.Name, segName bool) {
	r.Size = sum.Size
	r.PageSize = sum.PageSize
	r.Records = sum.Records
	if sum.Major != 0 {
		r.PGMajor, r.PageMagic, r.Timeline = sum.Major, fmt.Sprintf("%04X", sum.Magic), sum.TLI
		r.SystemIdentifier = strconv.FormatUint(sum.SystemID, 10)
	} else {
		r.fromHead(j, sum.Size)
	}
	if sum.SegmentSize != 0 {
		r.SegmentSize = uint32(sum.SegmentSize)
		start := sum.SegmentSize.StartLSN(sum.SegNo)
		r.StartLSN = &start
		if segName {
			r.Segment = name.SegmentBase()
		} else if r.Timeline != 0 {
			r.Segment = walname.SegmentName(r.Timeline, sum.SegNo, sum.SegmentSize)
		}
	}
	if sum.Records > 0 {
		first, last := sum.FirstRecord, sum.LastRecord
		r.FirstLSN, r.LastLSN = &first, &last
	}
	// A segment that is all the middle of one record has no record
	// boundary, hence no end of valid WAL of its own.
	if sum.End != 0 && !(sum.Records == 0 && sum.ContinuedFrom && sum.ContinuesIntoNext) {
		end := sum.End
		r.EndLSN = &end
	}
	r.ContinuedFromPrevious = sum.ContinuedFrom
	r.ContinuesIntoNext = sum.ContinuesIntoNext
	if sum.PartialRecord != 0 {
		p := sum.PartialRecord
		r.PartialRecordLSN = &p
	}
	r.EndsWithSwitch = sum.Switch
	switch {
	case sum.Switch:
		r.EndReason = "switch"
	case sum.Stop == nil:
		r.EndReason = "segment_end"
	case wal.IsEndOfWAL(sum.Stop):
		r.EndReason = "zeroed"
	default:
		r.EndReason = "invalid"
	}
	for k, v := range sum.RecordsByRmgr {
		r.RecordsByRmgr[k] = v
	}
	for _, ev := range sum.Events {
		switch ev.Kind {
		case wal.EventCommit, wal.EventCommitPrepared:
			r.Commits = append(r.Commits, xactOf(ev))
		case wal.EventAbort, wal.EventAbortPrepared:
			r.Aborts = append(r.Aborts, xactOf(ev))
		case wal.EventRestorePoint:
			r.RestorePoints = append(r.RestorePoints, restoreJSON{Name: ev.Name, Time: fmtTime(ev.Time), LSN: ev.LSN})
		}
	}

	stopAt := sum.End
	for i := range sum.Problems {
		p := &sum.Problems[i]
		f := contentFinding(j.path, p, sum.TLI)
		if sum.Major == 0 && !segName {
			// Neither the name nor a valid first page says which
			// segment this is: the LSN would be made up.
			f.LSN = 0
		}
		if sum.Stop != nil && p.LSN == sum.Stop.LSN && p.Err == sum.Stop.Err && stopAt != 0 &&
			!errors.Is(p, wal.ErrTruncated) && !errors.Is(p, wal.ErrTrailingData) {
			f.Hint = fmt.Sprintf("recovery stops here: valid WAL in this file ends at %s; %s", stopAt, f.Hint)
		}
		r.add(f)
	}
	if sum.Stop != nil && wal.IsEndOfWAL(sum.Stop) {
		f := finding.Finding{Severity: finding.Warning, Code: codeEndInSegment, File: j.path, LSN: sum.Stop.LSN, Timeline: sum.TLI,
			Message: fmt.Sprintf("valid WAL ends at %s, before the end of the segment: %v", sum.End, sum.Stop.Err),
			Hint:    "a complete archived segment is filled up to its end or ends with XLOG_SWITCH; this one was copied before it was written completely"}
		if name.Kind == walname.KindPartial || !segName {
			f.Severity = finding.Info
			f.Hint = "normal for a .partial file or the newest segment of pg_wal"
		}
		r.add(f.At(sum.Stop.Offset))
	}
}

func xactOf(ev wal.Event) xactJSON {
	prepared := ev.Kind == wal.EventCommitPrepared || ev.Kind == wal.EventAbortPrepared
	x := xactJSON{XID: ev.XID, Time: fmtTime(ev.Time), LSN: ev.LSN, Prepared: prepared}
	if prepared {
		x.GID = ev.Name
	}
	return x
}

// contentFinding turns a problem ScanSegment found into a finding.
func contentFinding(path string, ce *wal.ContentError, tli walname.TimelineID) finding.Finding {
	return audit.ContentFinding(path, ce, tli)
}

// singleSegment is a wal.SegmentSource with one file: every other segment
// is missing.
type singleSegment struct {
	job    *inspectJob
	seg    walname.SegNo
	opened bool
}

func (s *singleSegment) OpenSegment(ctx context.Context, seg walname.SegNo) (io.ReadCloser, string, error) {
	if seg != s.seg || s.opened {
		return nil, "", fmt.Errorf("%w: only %s was given", wal.ErrSegmentMissing, s.job.path)
	}
	s.opened = true
	cr, err := openContent(ctx, s.job.path, s.job.suffix)
	if err != nil {
		return nil, "", err
	}
	return cr, s.job.base, nil
}

// listRecords reads the file's records again, with a Reader, which stops
// where the scan stopped.
func listRecords(ctx context.Context, j *inspectJob, sum *wal.SegmentSummary) ([]recordJSON, error) {
	start := sum.SegmentSize.StartLSN(sum.SegNo)
	if start == 0 {
		return nil, nil // segment 0 is never written
	}
	r, err := wal.NewReader(ctx, &singleSegment{job: j, seg: sum.SegNo}, start, wal.Options{SegmentSize: sum.SegmentSize})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	list := make([]recordJSON, 0, sum.Records)
	for r.Next() {
		rec := r.Record()
		rm := rec.RmID.String()
		list = append(list, recordJSON{LSN: rec.StartLSN, Rmgr: rm, Len: rec.TotLen, RecLen: int(rec.TotLen) - rec.ImageBytes(),
			XID: rec.XID, Desc: describeRecord(rec)})
	}
	var ce *wal.ContentError
	if err := r.Err(); err != nil && !errors.As(err, &ce) {
		return list, err
	}
	return list, nil
}

// describeRecord is wal.Describe without the rmgr name; records of
// resource managers it does not decode get their info bits and block
// references, as pg_waldump prints them.
func describeRecord(rec *wal.Record) string {
	if rec.RmID == wal.RmXLOG || rec.RmID == wal.RmXact {
		return strings.TrimPrefix(wal.Describe(rec), rec.RmID.String()+" ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "info %02X", rec.Info)
	for _, blk := range rec.Blocks {
		fmt.Fprintf(&b, ", blkref #%d: rel %s", blk.ID, blk.Rel)
		if blk.Fork != 0 {
			fmt.Fprintf(&b, " fork %s", blk.Fork)
		}
		fmt.Fprintf(&b, " blk %d", blk.Block)
		if blk.HasImage {
			b.WriteString(" FPW")
		}
	}
	return b.String()
}

// renderInspect prints one file's report for people.
func renderInspect(w io.Writer, r *inspectReport, records bool) error {
	fmt.Fprintln(w, r.File)
	kv := func(k, format string, args ...any) {
		fmt.Fprintf(w, "  %-10s "+format+"\n", append([]any{k}, args...)...)
	}
	if r.Error != "" {
		kv("error", "could not inspect: %s", r.Error)
	}
	size := fmt.Sprintf("%d bytes", r.Size)
	if r.Compression != "" {
		size += " decompressed (" + r.Compression + "; offsets are in the decompressed content)"
	}
	if r.SegmentSize != 0 {
		size += fmt.Sprintf(", %s segments", walname.SegmentSize(r.SegmentSize))
	}
	if r.PageSize != 0 {
		size += fmt.Sprintf(", %d-byte pages", r.PageSize)
	}
	kv("size", "%s", size)
	if r.Segment != "" || r.Timeline != 0 {
		seg := orDash(r.Segment)
		if r.Timeline != 0 {
			seg += fmt.Sprintf(", page timeline %d", r.Timeline)
		}
		if r.StartLSN != nil {
			seg += fmt.Sprintf(", %s to %s", *r.StartLSN, *r.StartLSN+walname.LSN(r.SegmentSize))
		}
		kv("segment", "%s", seg)
	}
	switch {
	case r.PGMajor != 0:
		kv("version", "PostgreSQL %d (page magic %s)", r.PGMajor, r.PageMagic)
	case r.PageMagic != "":
		kv("version", "unknown (page magic %s)", r.PageMagic)
	}
	if r.SystemIdentifier != "" {
		kv("system", "%s", r.SystemIdentifier)
	}
	if r.Error == "" && r.PGMajor != 0 {
		rec := fmt.Sprintf("%d", r.Records)
		if r.FirstLSN != nil {
			rec += fmt.Sprintf(", first %s, last %s", *r.FirstLSN, *r.LastLSN)
		}
		if r.ContinuedFromPrevious {
			rec += "; starts with the rest of a record from the previous segment"
		}
		kv("records", "%s", rec)
		if r.EndLSN == nil && r.ContinuedFromPrevious && r.ContinuesIntoNext {
			kv("end", "none: the whole segment is the middle of a record begun in an earlier segment and continued in the next")
		}
		if r.EndLSN != nil {
			var why string
			switch r.EndReason {
			case "switch":
				why = "XLOG_SWITCH: the rest of the segment is unused"
			case "segment_end":
				why = "end of the segment"
				if r.PartialRecordLSN != nil {
					why += fmt.Sprintf("; the record at %s continues in the next segment", *r.PartialRecordLSN)
				} else if r.ContinuesIntoNext {
					why += "; the record continues in the next segment"
				}
			case "zeroed":
				why = "zeroed space: WAL never written"
			case "invalid":
				why = "invalid WAL, see findings"
			}
			kv("end", "%s (%s)", *r.EndLSN, why)
		}
		kv("commits", "%s", xactSummary(r.Commits))
		kv("aborts", "%s", xactSummary(r.Aborts))
		for _, rp := range r.RestorePoints {
			kv("restore", "%q at %s, %s", rp.Name, rp.LSN, rp.Time)
		}
		if len(r.RecordsByRmgr) > 0 {
			type kc struct {
				k string
				n int
			}
			var rows []kc
			for k, n := range r.RecordsByRmgr {
				rows = append(rows, kc{k, n})
			}
			sort.Slice(rows, func(a, b int) bool {
				if rows[a].n != rows[b].n {
					return rows[a].n > rows[b].n
				}
				return rows[a].k < rows[b].k
			})
			var parts []string
			for _, row := range rows {
				parts = append(parts, fmt.Sprintf("%s %d", row.k, row.n))
			}
			kv("by rmgr", "%s", strings.Join(parts, ", "))
		}
	}
	if len(r.Findings) > 0 {
		fmt.Fprintf(w, "  FINDINGS (%d errors, %d warnings)\n", finding.Count(r.Findings, finding.Error), finding.Count(r.Findings, finding.Warning))
		for _, f := range r.Findings {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	if records && len(r.RecordList) > 0 {
		fmt.Fprintf(w, "  RECORDS (%d)\n", len(r.RecordList))
		fmt.Fprintf(w, "    %-12s %-14s %-15s %-10s %s\n", "LSN", "RMGR", "LEN (REC/TOT)", "XID", "DESCRIPTION")
		for _, rec := range r.RecordList {
			if _, err := fmt.Fprintf(w, "    %-12s %-14s %-15s %-10d %s\n", rec.LSN, rec.Rmgr, fmt.Sprintf("%d/%d", rec.RecLen, rec.Len), rec.XID, rec.Desc); err != nil {
				return err
			}
		}
	}
	return nil
}

func xactSummary(xs []xactJSON) string {
	if len(xs) == 0 {
		return "0"
	}
	prepared := 0
	for _, x := range xs {
		if x.Prepared {
			prepared++
		}
	}
	s := fmt.Sprintf("%d", len(xs))
	if prepared > 0 {
		s += fmt.Sprintf(" (%d prepared)", prepared)
	}
	first, last := xs[0], xs[len(xs)-1]
	s += fmt.Sprintf(", first xid %d at %s (%s)", first.XID, first.Time, first.LSN)
	if len(xs) > 1 {
		s += fmt.Sprintf(", last xid %d at %s (%s)", last.XID, last.Time, last.LSN)
	}
	return s
}

// forEachOrdered runs work for 0..n-1 on up to workers goroutines and
// hands the results to emit in index order as soon as each is ready; at
// most window results are computed ahead of emit. An error of emit, or
// the end of ctx, stops it.
func forEachOrdered[T any](ctx context.Context, n, workers, window int, work func(context.Context, int) T, emit func(int, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers, window = max(workers, 1), max(window, 1)
	results := make([]T, n)
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	slots := make(chan struct{}, window)
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				results[i] = work(ctx, i)
				close(done[i])
			}
		})
	}
	var err error
	for i := 0; i < n && err == nil; i++ {
		select {
		case <-done[i]:
			err = emit(i, results[i])
			var zero T
			results[i] = zero
			<-slots
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	wg.Wait()
	return err
}
