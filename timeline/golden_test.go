package timeline

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/walaudit/walaudit/walname"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata/*.txt")

// The golden files in testdata/ are sequences of blocks. A block starts with
// a line "=== <command> <args>" and runs to the next such line. Lines before
// the first block are a description. Setup blocks build an archive; query
// blocks hold the expected output, compared after trimming trailing blank
// lines. In archive blocks, lines starting with '#' are comments.
//
// Setup:
//
//	=== segsize 1MiB|16MiB|1GiB
//	=== history N        body: the file's lines, verbatim
//	=== archive          body: object names (any form walname.Parse takes)
//	=== reset            forget everything (start another scenario)
//
// Queries:
//
//	=== tree
//	=== problems
//	=== entries N [at=X/Y,X/Y...]
//	=== path tli=N from=X/Y [until=X/Y]
//	=== resolve latest|current|N ckpt=X/Y tli=N [minrp=X/Y minrptli=N]
//	=== options ckpt=X/Y tli=N
//	=== plan tli=N start=X/Y [until=X/Y]
//	=== requests latest|current|N ckpt=X/Y tli=N start=X/Y [until=X/Y]
//	=== coverage
//
// Run "go test ./timeline -run TestGolden -update" to rewrite outputs, then
// review the diff.

type block struct {
	header string
	body   []string
}

func parseGolden(text string) (preamble []string, blocks []block) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for _, l := range lines {
		if h, ok := strings.CutPrefix(l, "=== "); ok {
			blocks = append(blocks, block{header: h})
			continue
		}
		if len(blocks) == 0 {
			preamble = append(preamble, l)
		} else {
			b := &blocks[len(blocks)-1]
			b.body = append(b.body, l)
		}
	}
	for i := range blocks {
		blocks[i].body = trimTrailingBlank(blocks[i].body)
	}
	return preamble, blocks
}

func trimTrailingBlank(ls []string) []string {
	for len(ls) > 0 && strings.TrimSpace(ls[len(ls)-1]) == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

func renderGolden(preamble []string, blocks []block) string {
	var b strings.Builder
	for _, l := range preamble {
		b.WriteString(l + "\n")
	}
	for i, bl := range blocks {
		b.WriteString("=== " + bl.header + "\n")
		for _, l := range bl.body {
			b.WriteString(l + "\n")
		}
		if i < len(blocks)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// scenario is the archive a golden file builds up.
type scenario struct {
	t         *testing.T
	sz        walname.SegmentSize
	histories map[walname.TimelineID][]byte
	inv       *Inventory
	set       *Set // built lazily
}

func newScenario(t *testing.T, sz walname.SegmentSize) *scenario {
	inv, err := NewInventory(sz)
	if err != nil {
		t.Fatal(err)
	}
	return &scenario{t: t, sz: sz, histories: map[walname.TimelineID][]byte{}, inv: inv}
}

func (sc *scenario) theSet() *Set {
	if sc.set == nil {
		sc.set = NewSet(sc.histories, sc.inv.Timelines())
	}
	return sc.set
}

// args splits "cmd pos... key=value..." into positionals and options.
func args(fields []string) (pos []string, opt map[string]string) {
	opt = map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			opt[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return pos, opt
}

func (sc *scenario) lsn(opt map[string]string, key string, required bool) walname.LSN {
	v, ok := opt[key]
	if !ok {
		if required {
			sc.t.Fatalf("missing %s=", key)
		}
		return walname.InvalidLSN
	}
	l, err := walname.ParseLSN(v)
	if err != nil {
		sc.t.Fatalf("%s=%s: %v", key, v, err)
	}
	return l
}

func (sc *scenario) tli(s string) walname.TimelineID {
	v, err := walname.ParseTimelineID(s)
	if err != nil {
		sc.t.Fatal(err)
	}
	return v
}

func (sc *scenario) backup(opt map[string]string) Backup {
	b := Backup{CheckpointLSN: sc.lsn(opt, "ckpt", true), CheckpointTLI: sc.tli(opt["tli"])}
	if _, ok := opt["minrp"]; ok {
		b.MinRecoveryPoint = sc.lsn(opt, "minrp", true)
		b.MinRecoveryPointTLI = sc.tli(opt["minrptli"])
	}
	return b
}

func (sc *scenario) target(s string) Target {
	tg, err := ParseTarget(s)
	if err != nil {
		sc.t.Fatal(err)
	}
	return tg
}

// run executes one block; for queries it returns the output.
func (sc *scenario) run(bl block) (out string, query bool) {
	fields := strings.Fields(bl.header)
	if len(fields) == 0 {
		sc.t.Fatal("empty block header")
	}
	cmd := fields[0]
	pos, opt := args(fields[1:])
	body := bl.body
	switch cmd {
	case "reset":
		*sc = *newScenario(sc.t, sc.sz)
	case "segsize":
		sz := map[string]walname.SegmentSize{"1MiB": 1 << 20, "16MiB": 16 << 20, "1GiB": 1 << 30}[pos[0]]
		*sc = *newScenario(sc.t, sz)
	case "history":
		var data string
		if len(body) > 0 {
			data = strings.Join(body, "\n") + "\n"
		}
		sc.histories[sc.tli(pos[0])] = []byte(data)
		sc.set = nil
	case "archive":
		for _, l := range body {
			if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			n, err := sc.inv.AddName(l)
			if err != nil {
				sc.t.Fatal(err)
			}
			if n.Kind == walname.KindTimelineHistory {
				if _, ok := sc.histories[n.TLI]; !ok {
					sc.t.Fatalf("archive lists %s but no history %d block gives its content", l, n.TLI)
				}
			}
		}
		sc.set = nil
	case "tree":
		return sc.theSet().Tree(), true
	case "problems":
		return sc.problems(), true
	case "entries":
		return sc.entries(sc.tli(pos[0]), opt), true
	case "path":
		return sc.path(opt), true
	case "resolve":
		return sc.resolve(sc.target(pos[0]), sc.backup(opt)), true
	case "options":
		return sc.options(sc.backup(opt)), true
	case "plan":
		return sc.plan(opt), true
	case "requests":
		return sc.requests(sc.target(pos[0]), opt), true
	case "coverage":
		return sc.coverage(), true
	default:
		sc.t.Fatalf("unknown block %q", cmd)
	}
	return "", false
}

func (sc *scenario) problems() string {
	ps := sc.theSet().Problems()
	if len(ps) == 0 {
		return "none\n"
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

func (sc *scenario) entries(tli walname.TimelineID, opt map[string]string) string {
	h, err := sc.theSet().History(tli)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, e := range h.Entries() {
		b.WriteString(e.String())
		if e.IsTip() {
			b.WriteString(" tip")
		} else {
			fmt.Fprintf(&b, " line %d %q", e.Line, e.Reason)
		}
		if e.Backwards() {
			b.WriteString(" backwards")
		}
		b.WriteString("\n")
	}
	if at, ok := opt["at"]; ok {
		for _, s := range strings.Split(at, ",") {
			l, err := walname.ParseLSN(s)
			if err != nil {
				sc.t.Fatal(err)
			}
			fmt.Fprintf(&b, "at %s: %d\n", l, h.TLIAt(l))
		}
	}
	return b.String()
}

func (sc *scenario) history(opt map[string]string) *History {
	h, err := sc.theSet().History(sc.tli(opt["tli"]))
	if err != nil {
		sc.t.Fatal(err)
	}
	return h
}

func (sc *scenario) path(opt map[string]string) string {
	var b strings.Builder
	for _, s := range sc.history(opt).Path(sc.lsn(opt, "from", true), sc.lsn(opt, "until", false)) {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}

func (sc *scenario) resolve(tg Target, bk Backup) string {
	set := sc.theSet()
	r, err := set.Resolve(tg, bk)
	if err != nil {
		sc.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "target: %s -> TLI %d\n", tg, r.TLI)
	if len(r.Probed) > 0 {
		var ps []string
		for _, p := range r.Probed {
			state := "found"
			if !set.HasHistoryFile(p) {
				state = "missing"
			}
			ps = append(ps, fmt.Sprintf("%d %s", p, state))
		}
		fmt.Fprintf(&b, "probed: %s\n", strings.Join(ps, ", "))
	}
	fmt.Fprintf(&b, "status: %s\n", r.Status)
	if msg, detail := r.Fatal(); msg != "" {
		fmt.Fprintf(&b, "fatal: %s\n", msg)
		if detail != "" {
			fmt.Fprintf(&b, "detail: %s\n", detail)
		}
	}
	fmt.Fprintf(&b, "explain: %s\n", r.Describe())
	ws, err := set.WorkingTargets(bk)
	if err != nil {
		sc.t.Fatal(err)
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.String())
	}
	fmt.Fprintf(&b, "working: %s\n", strings.Join(names, ", "))
	return b.String()
}

func (sc *scenario) options(bk Backup) string {
	opts, err := sc.theSet().TargetOptions(bk)
	if err != nil {
		sc.t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range opts {
		fmt.Fprintf(&b, "%-8s TLI %d  %s\n", r.Target, r.TLI, r.Status)
	}
	return b.String()
}

func (sc *scenario) makePlan(h *History, opt map[string]string) *Plan {
	p, err := h.Plan(PlanRequest{
		Size:    sc.sz,
		Start:   sc.lsn(opt, "start", true).Segment(sc.sz),
		Until:   sc.lsn(opt, "until", false),
		Exists:  sc.inv.Has,
		Partial: sc.inv.HasPartial,
	})
	if err != nil {
		sc.t.Fatal(err)
	}
	return p
}

func (sc *scenario) plan(opt map[string]string) string {
	p := sc.makePlan(sc.history(opt), opt)
	var b strings.Builder
	for _, st := range p.Steps {
		for i, t := range st.Tried {
			name := walname.SegmentName(t, st.Seg, p.Size)
			if i < len(st.Tried)-1 || st.Read == 0 {
				b.WriteString(name + " absent")
			} else {
				b.WriteString(name + " found")
			}
			if i < len(st.Tried)-1 {
				b.WriteString("\n")
			}
		}
		if len(st.Tried) == 0 {
			b.WriteString(walname.SegmentName(st.Want, st.Seg, p.Size) + " not requested")
		}
		switch st.Status {
		case StepOK:
			b.WriteString(" -> ok")
		case StepWrongBranch:
			fmt.Fprintf(&b, " -> wrong_branch: want TLI %d, this copy is right only before %s", st.Want, st.ValidEnd)
		case StepMissing:
			fmt.Fprintf(&b, " -> missing: want TLI %d", st.Want)
		}
		if st.PartialOnly {
			b.WriteString("; only .partial exists")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "end: %s", p.End)
	if p.Complete {
		b.WriteString(" complete")
	}
	b.WriteString("\n")
	if err := p.Err(); err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	return b.String()
}

func (sc *scenario) requests(tg Target, opt map[string]string) string {
	set := sc.theSet()
	r, err := set.Resolve(tg, sc.backup(opt))
	if err != nil {
		sc.t.Fatal(err)
	}
	var p *Plan
	if r.History != nil {
		p = sc.makePlan(r.History, opt)
	}
	var b strings.Builder
	names, fatal := RestoreSequence(r, p)
	for _, name := range names {
		b.WriteString(name)
		n, err := walname.Parse(name)
		if err != nil {
			sc.t.Fatal(err)
		}
		absent := false
		if n.Kind == walname.KindTimelineHistory {
			absent = !set.HasHistoryFile(n.TLI)
		} else if seg, err := n.SegNo(sc.sz); err != nil || !sc.inv.Has(n.TLI, seg) {
			absent = true
		}
		if absent {
			b.WriteString(" absent")
		}
		b.WriteString("\n")
	}
	if fatal != "" {
		fmt.Fprintf(&b, "fatal: %s\n", fatal)
	}
	return b.String()
}

func (sc *scenario) coverage() string {
	var b strings.Builder
	for _, t := range sc.inv.Timelines() {
		fmt.Fprintf(&b, "TLI %d\n", t)
		for _, r := range sc.inv.Coverage(t) {
			fmt.Fprintf(&b, "  %s [%s, %s) %d segment(s)\n", r.Format(t, sc.sz), r.StartLSN(sc.sz), r.EndLSN(sc.sz), r.Count())
		}
		for _, r := range sc.inv.Gaps(t) {
			fmt.Fprintf(&b, "  gap %s [%s, %s) %d segment(s)\n", r.Format(t, sc.sz), r.StartLSN(sc.sz), r.EndLSN(sc.sz), r.Count())
		}
		for _, s := range sc.inv.Partials(t) {
			fmt.Fprintf(&b, "  partial %s.partial\n", walname.SegmentName(t, s, sc.sz))
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	sort.Strings(files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			preamble, blocks := parseGolden(string(data))
			sc := newScenario(t, 16<<20)
			queries := 0
			for i, bl := range blocks {
				got, query := sc.run(bl)
				if !query {
					continue
				}
				queries++
				gotLines := trimTrailingBlank(strings.Split(got, "\n"))
				if *update {
					blocks[i].body = gotLines
					continue
				}
				want := strings.Join(bl.body, "\n")
				if have := strings.Join(gotLines, "\n"); have != want {
					t.Errorf("%s: === %s\n--- want\n%s\n--- got\n%s", file, bl.header, want, have)
				}
			}
			if queries == 0 {
				t.Errorf("%s has no query blocks", file)
			}
			if *update {
				if err := os.WriteFile(file, []byte(renderGolden(preamble, blocks)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
