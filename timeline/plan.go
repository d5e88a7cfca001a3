package timeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/walaudit/walaudit/walname"
)

// ErrMissingSegment is wrapped by [Plan.Err] when a segment recovery needs
// is not in the archive (as a complete file): recovery ends there.
var ErrMissingSegment = errors.New("timeline: required WAL segment missing")

// ErrWrongBranch is wrapped by [Plan.Err] when recovery would read a
// parent timeline's copy of a segment while the WAL it needs from that
// segment belongs to a child timeline: the server replays the parent's
// records past the switch point without complaint.
var ErrWrongBranch = errors.New("timeline: recovery would read the wrong timeline's copy of a segment")

// ExistsFunc reports whether the complete segment seg of timeline tli is
// available to recovery (archive or pg_wal). It must not count .partial
// files: recovery never asks for them. For a plan without an end it must
// describe a finite archive.
type ExistsFunc func(tli walname.TimelineID, seg walname.SegNo) bool

// PlanRequest describes the stretch of WAL to plan.
type PlanRequest struct {
	// Size is the cluster's wal_segment_size.
	Size walname.SegmentSize
	// Start is the first segment recovery reads: the segment of the backup's
	// start (redo) LSN, normally also the checkpoint's.
	Start walname.SegNo
	// Until is the exclusive end of the WAL that must be replayed: every byte
	// before it is needed, e.g. the backup's consistency point or the end of
	// the record recovery stops at. A stop point at or past a switch point
	// therefore needs the child's WAL. 0 plans to the end of the WAL found.
	Until walname.LSN
	// Exists reports complete segments. Required.
	Exists ExistsFunc
	// Partial optionally reports .partial files, only to explain a gap.
	Partial ExistsFunc
}

// StepStatus says whether recovery gets the right WAL for a segment.
type StepStatus string

// Step statuses.
const (
	// StepOK: the file recovery opens holds the right WAL for every needed
	// byte of the segment.
	StepOK StepStatus = "ok"
	// StepWrongBranch: recovery opens a file whose WAL leaves the target's
	// path inside the needed part of the segment (see [Step.ValidEnd]).
	StepWrongBranch StepStatus = "wrong_branch"
	// StepMissing: no candidate file exists; recovery's WAL ends here.
	StepMissing StepStatus = "missing"
)

// Step is what recovery does for one segment.
type Step struct {
	Seg walname.SegNo `json:"seg"`
	// Tried lists the timelines whose copy of Seg recovery asks
	// restore_command for, in order; the last is Read unless Status is
	// StepMissing. (The server may repeat a failed request when it retries
	// from pg_wal; repeats are not listed.)
	Tried []walname.TimelineID `json:"tried"`
	// Read is the timeline whose copy recovery opens; 0 when none exists.
	Read walname.TimelineID `json:"read,omitempty"`
	// Want is the timeline that holds the last needed byte of the segment:
	// the copy that is right for it.
	Want   walname.TimelineID `json:"want"`
	Status StepStatus         `json:"status"`
	// ValidEnd, for StepWrongBranch, is where Read's copy stops matching the
	// target's history: WAL before it is right, WAL from it on is another
	// branch's.
	ValidEnd walname.LSN `json:"valid_end,omitempty"`
	// PartialOnly is set when Want's copy is absent but a .partial of it
	// exists: recovery never asks for it, an operator must rename it by hand.
	PartialOnly bool `json:"partial_only,omitempty"`
}

// Plan is the sequence of segment files recovery requests along a target
// timeline, with the verdict on each.
type Plan struct {
	Target walname.TimelineID  `json:"target"`
	Size   walname.SegmentSize `json:"size"`
	Start  walname.SegNo       `json:"start"`
	Until  walname.LSN         `json:"until,omitempty"`
	// Steps holds one step per segment from Start, ending at Until's last
	// segment or at the first segment with no file. After a wrong-branch
	// step the simulation goes on as the server would.
	Steps []Step `json:"steps"`
	// End is where usable WAL stops (exclusive): every byte from Start's
	// first byte to End is present and on the target's path. Without Until it
	// is where contiguous WAL ends; a backup whose consistency point is at or
	// below End can reach consistency.
	End walname.LSN `json:"end"`
	// Complete is true when Until is set and End reaches it.
	Complete bool `json:"complete"`
	// Stop is the index in Steps of the first step that ended usable WAL
	// (missing or wrong branch), or -1.
	Stop int `json:"stop"`
}

// Plan simulates the files recovery requests along h, the target timeline's
// history, from req.Start, with the server's selection rule
// (XLogFileReadAnyTLI): for each segment, entries newest first; stop at a
// timeline lower than the previous file's; skip entries that begin in a
// later segment; the first file that exists wins. Each step is also judged
// against the right copy (see [Step]).
//
// Plan only covers segments. When the checkpoint record lies in a later
// segment than the redo LSN, the server reads that segment first; the rule
// for choosing its file is the same.
func (h *History) Plan(req PlanRequest) (*Plan, error) {
	if err := req.Size.Validate(); err != nil {
		return nil, fmt.Errorf("plan timeline %d: %w", h.tli, err)
	}
	if req.Exists == nil {
		return nil, fmt.Errorf("plan timeline %d: no Exists callback", h.tli)
	}
	sz := req.Size
	p := &Plan{Target: h.tli, Size: sz, Start: req.Start, Until: req.Until, Stop: -1, End: sz.StartLSN(req.Start)}
	bounded := req.Until != walname.InvalidLSN
	if bounded && req.Until <= p.End {
		p.Complete = true
		return p, nil
	}
	var last walname.SegNo
	if bounded {
		last = req.Until.EndSegment(sz)
	}
	maxSeg := walname.SegNo(math.MaxUint64 / uint64(sz))
	var cur walname.TimelineID // TLI of the previously opened file (curFileTLI)
	for seg := req.Start; ; seg++ {
		st, needEnd := h.step(seg, cur, req)
		p.Steps = append(p.Steps, st)
		if p.Stop < 0 {
			switch st.Status {
			case StepOK:
				p.End = needEnd
			case StepWrongBranch:
				p.End, p.Stop = st.ValidEnd, len(p.Steps)-1
			case StepMissing:
				p.End, p.Stop = sz.StartLSN(seg), len(p.Steps)-1
			}
		}
		if st.Status == StepMissing || (bounded && seg == last) || seg == maxSeg {
			break
		}
		cur = st.Read
	}
	p.Complete = bounded && p.Stop < 0 && p.End >= req.Until
	return p, nil
}

// segEnd is the exclusive end of seg, saturating at the top of the LSN space.
func segEnd(seg walname.SegNo, sz walname.SegmentSize) walname.LSN {
	if uint64(seg) >= math.MaxUint64/uint64(sz) {
		return math.MaxUint64
	}
	return sz.StartLSN(seg + 1)
}

// step decides one segment; needEnd is the exclusive end of its needed bytes.
func (h *History) step(seg walname.SegNo, cur walname.TimelineID, req PlanRequest) (Step, walname.LSN) {
	sz := req.Size
	lo, needEnd := sz.StartLSN(seg), segEnd(seg, sz)
	if req.Until != walname.InvalidLSN && req.Until < needEnd {
		needEnd = req.Until
	}
	st := Step{Seg: seg, Want: h.TLIAt(needEnd - 1)}
	readIdx := -1
	for i := len(h.entries) - 1; i >= 0; i-- {
		e := h.entries[i]
		if e.TLI < cur {
			break // the TLI never goes backwards
		}
		if e.Begin != walname.InvalidLSN && e.Begin.Segment(sz) > seg {
			continue // this timeline starts in a later segment
		}
		st.Tried = append(st.Tried, e.TLI)
		if req.Exists(e.TLI, seg) {
			st.Read, readIdx = e.TLI, i
			break
		}
	}
	wantAbsent := st.Read != st.Want && !req.Exists(st.Want, seg)
	st.PartialOnly = wantAbsent && req.Partial != nil && req.Partial(st.Want, seg)
	switch {
	case readIdx < 0:
		st.Status = StepMissing
	default:
		if v := h.validEnd(readIdx, lo, needEnd); v < needEnd {
			st.Status, st.ValidEnd = StepWrongBranch, v
		} else {
			st.Status = StepOK
		}
	}
	return st, needEnd
}

// validEnd returns the first position in [lo, hi) where the copy of entry
// k's timeline disagrees with this history, or hi. The copy of timeline t
// holds t's own history: the entries up to k, with k open-ended.
func (h *History) validEnd(k int, lo, hi walname.LSN) walname.LSN {
	own := append([]Entry(nil), h.entries[:k+1]...)
	own[k].End = walname.InvalidLSN
	points := append([]walname.LSN{lo}, breakpoints(h.entries, lo, hi)...)
	for _, p := range points {
		if tliAt(own, h.sorted, p) != h.TLIAt(p) { // a prefix of sorted entries is sorted
			return p
		}
	}
	return hi
}

// Requests returns the segment names recovery asks restore_command for, in
// order.
func (p *Plan) Requests() []string {
	var out []string
	for _, st := range p.Steps {
		for _, t := range st.Tried {
			out = append(out, walname.SegmentName(t, st.Seg, p.Size))
		}
	}
	return out
}

// Err explains why the plan does not deliver the WAL it was asked for: with
// Until set, nil only when Complete; without Until, an error only for a
// wrong-branch read (running out of WAL is the normal end). The error
// wraps [ErrMissingSegment] or [ErrWrongBranch].
func (p *Plan) Err() error {
	if p.Stop < 0 {
		return nil
	}
	st := p.Steps[p.Stop]
	want := walname.SegmentName(st.Want, st.Seg, p.Size)
	switch st.Status {
	case StepWrongBranch:
		return fmt.Errorf("%w: recovery reads %s, but WAL from %s on belongs to timeline %d and %s is not in the archive; replay would silently continue on timeline %d's branch",
			ErrWrongBranch, walname.SegmentName(st.Read, st.Seg, p.Size), st.ValidEnd, st.Want, want, st.Read)
	case StepMissing:
		if p.Until == walname.InvalidLSN {
			return nil
		}
		msg := fmt.Sprintf("%s is not in the archive; WAL ends at %s, before %s", want, p.End, p.Until)
		if st.PartialOnly {
			msg += fmt.Sprintf("; only %s.partial exists: recovery never requests it, rename it to %s by hand", want, want)
		}
		return fmt.Errorf("%w: %s", ErrMissingSegment, msg)
	}
	return nil
}

// Window returns the recoverable window of a backup whose consistency point
// (stop LSN) is stop, for a plan made without Until from the backup's start
// segment: recovery targets from stop up to End can be reached as far as
// segment files go. ok is false when usable WAL ends before stop: the backup
// cannot even reach consistency.
func (p *Plan) Window(stop walname.LSN) (from, to walname.LSN, ok bool) {
	if stop > p.End {
		return 0, 0, false
	}
	return stop, p.End, true
}
