package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// memAPI is an in-process stand-in for the S3 list API over a sorted key
// slice, with S3's semantics for Prefix, StartAfter, MaxKeys and
// continuation tokens. It lets the range splitting be checked on many
// random key sets without HTTP.
type memAPI struct {
	keys     []string // sorted
	requests atomic.Int64
	shuffle  bool // return each page out of order, as a broken server might
	latency  time.Duration
}

func (m *memAPI) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	m.requests.Add(1)
	time.Sleep(m.latency)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := aws.ToString(in.Prefix)
	after := aws.ToString(in.StartAfter)
	if in.ContinuationToken != nil {
		after = *in.ContinuationToken
	}
	max := int(aws.ToInt32(in.MaxKeys))
	if max <= 0 || max > 1000 {
		max = 1000
	}
	i := sort.SearchStrings(m.keys, after)
	if i < len(m.keys) && m.keys[i] == after {
		i++
	}
	if i < len(m.keys) && m.keys[i] < prefix {
		i = sort.SearchStrings(m.keys, prefix)
	}
	out := &s3.ListObjectsV2Output{}
	for ; i < len(m.keys) && strings.HasPrefix(m.keys[i], prefix); i++ {
		if len(out.Contents) == max {
			out.IsTruncated = aws.Bool(true)
			out.NextContinuationToken = out.Contents[len(out.Contents)-1].Key
			break
		}
		out.Contents = append(out.Contents, types.Object{Key: aws.String(m.keys[i]), Size: aws.Int64(int64(len(m.keys[i])))})
	}
	if m.shuffle && len(out.Contents) > 1 {
		out.Contents[0], out.Contents[1] = out.Contents[1], out.Contents[0]
	}
	return out, nil
}

func (m *memAPI) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, errors.New("not implemented")
}

func (m *memAPI) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("not implemented")
}

// memS3 returns an S3 store over keys (which need not be sorted).
func memS3(keys []string, root string, workers, pageSize int) (*S3, *memAPI) {
	k := slices.Clone(keys)
	slices.Sort(k)
	k = slices.Compact(k)
	api := &memAPI{keys: k}
	return &S3{api: api, bucket: "mem", root: root, workers: workers, pageSize: int32(pageSize), attempts: 1, region: "us-east-1"}, api
}

// collect lists prefix and returns the keys in call order, failing the test
// when fn runs on another goroutine than the caller's.
func collect(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	var keys []string
	me := goroutineID()
	err := s.List(context.Background(), prefix, func(o ObjectInfo) error {
		// runtime.Stack is slow: check every 16th call.
		if len(keys)%16 == 0 {
			if id := goroutineID(); id != me {
				return fmt.Errorf("fn ran on goroutine %d, List was called on %d", id, me)
			}
		}
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

// want returns the sorted keys with the given prefix, relative to root,
// without folder markers: what List must produce.
func want(keys []string, root, prefix string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, root+prefix) && !strings.HasSuffix(k, "/") {
			out = append(out, strings.TrimPrefix(k, root))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameKeys compares a listing (any order, each key once) to sorted want.
func sameKeys(t testing.TB, name string, got, want []string) {
	t.Helper()
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			t.Fatalf("%s: key %q listed more than once", name, sorted[i])
		}
	}
	if !slices.Equal(sorted, want) {
		missing, extra := diffKeys(want, sorted)
		t.Fatalf("%s: listed %d keys, want %d; missing %q; extra %q", name, len(sorted), len(want), head(missing), head(extra))
	}
}

func diffKeys(want, got []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, k := range want {
		w[k] = true
	}
	g := map[string]bool{}
	for _, k := range got {
		g[k] = true
		if !w[k] {
			extra = append(extra, k)
		}
	}
	for _, k := range want {
		if !g[k] {
			missing = append(missing, k)
		}
	}
	return missing, extra
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// walKeys returns WAL-archive-like keys: segments of several timelines,
// with history, backup and partial files, under dir.
func walKeys(dir string, segments int) []string {
	var keys []string
	tli, log, seg := 1, 0, 0
	for i := range segments {
		keys = append(keys, fmt.Sprintf("%s%08X%08X%08X", dir, tli, log, seg))
		if i%997 == 500 {
			keys = append(keys, fmt.Sprintf("%s%08X%08X%08X.%08X.backup", dir, tli, log, seg, 40))
		}
		seg++
		if seg == 256 {
			seg, log = 0, log+1
		}
		if i > 0 && i%40000 == 0 {
			keys = append(keys, fmt.Sprintf("%s%08X%08X%08X.partial", dir, tli, log, seg))
			tli++
			keys = append(keys, fmt.Sprintf("%s%08X.history", dir, tli))
		}
	}
	return keys
}

// walSegments returns n segment names of 16 MiB segments: timeline 1, then
// from three fifths on timeline 2.
func walSegments(n int) []string {
	keys := make([]string, 0, n)
	for i := range n {
		tli := 1
		if i >= n*3/5 {
			tli = 2
		}
		keys = append(keys, fmt.Sprintf("%08X%08X%08X", tli, i/256, i%256))
	}
	return keys
}

// randomKeys draws keys from an alphabet full of edge cases: bytes around
// the hex digits, the cut-off '~', a multi-byte character, and keys that are
// prefixes of each other and of boundary strings.
func randomKeys(r *rand.Rand, n int) []string {
	pieces := []string{"0", "1", "9", "A", "F", "a", "f", "z", "/", ".", "-", "~", " ", "é", "\u007f", "G", "00", "FF"}
	keys := make([]string, 0, n)
	for range n {
		var b strings.Builder
		for range 1 + r.IntN(8) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		keys = append(keys, b.String())
	}
	return keys
}

func TestSplitPointsInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		keys := randomKeys(r, 2+r.IntN(12))
		slices.Sort(keys)
		keys = slices.Compact(keys)
		hi := ""
		if i%2 == 0 {
			hi = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
		}
		if len(keys) < 2 {
			continue
		}
		last := keys[len(keys)-1]
		floor := r.IntN(commonPrefixLen(keys[0], last) + 1)
		c := splitPoints(keys, floor, hi)
		if c.fine > len(c.bounds) || c.perPiece < 0 {
			t.Fatalf("splitPoints(%q, %d, %q) = %+v", keys, floor, hi, c)
		}
		prev := last
		for _, x := range c.bounds {
			if x <= prev {
				t.Fatalf("splitPoints(%q, %d, %q) = %q: not ascending after %q", keys, floor, hi, c.bounds, prev)
			}
			if hi != "" && x >= hi {
				t.Fatalf("splitPoints(%q, %d, %q) = %q: %q not below hi", keys, floor, hi, c.bounds, x)
			}
			if !strings.HasPrefix(x, last[:floor]) {
				t.Fatalf("splitPoints(%q, %d, %q) = %q: %q leaves the prefix", keys, floor, hi, c.bounds, x)
			}
			if sa := startAfter(x); sa >= x || !utf8Valid(sa) {
				t.Fatalf("startAfter(%q) = %q: want a valid string below it", x, sa)
			}
			prev = x
		}
	}
}

func TestSplitPointsWAL(t *testing.T) {
	// A first page of 1000 segments covers log files 0 to 3: pieces of 3
	// log files (768 segments) at the log-id digit, one piece per digit
	// above it, and the rest after two shorter prefixes.
	keys := walSegments(10000)[:1000]
	c := splitPoints(keys, 0, "")
	want := []string{"0000000100000006", "0000000100000009", "000000010000000C", "000000010000000F"}
	if !slices.Equal(c.bounds[:c.fine], want) || c.perPiece != 3*256 {
		t.Errorf("fine bounds %q with %d keys each, want %q with 768", c.bounds[:c.fine], c.perPiece, want)
	}
	if got := c.bounds[c.fine:]; len(got) != 17 || got[0] != "000000010000001" || got[14] != "00000001000000F" || got[16] != "0000000100001" {
		t.Errorf("coarse bounds %q", got)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestRangePrefix(t *testing.T) {
	cases := []struct{ lo, hi, parent, want string }{
		{"0000000100000004", "0000000100000005", "", "0000000100000004"},
		{"0000000100000004", "0000000100000007", "", "000000010000000"},
		{"00000001000001", "0000000100001", "", "0000000100000"},
		{"a", "", "p/", "p/"},
		{"p/a", "p/b", "p/", "p/a"},
		{"p/a", "q", "p/", "p/"},
	}
	for _, c := range cases {
		if got := rangePrefix(c.lo, c.hi, c.parent); got != c.want {
			t.Errorf("rangePrefix(%q, %q, %q) = %q, want %q", c.lo, c.hi, c.parent, got, c.want)
		}
	}
	// Property: every key in [lo, hi) has the prefix.
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		k := randomKeys(r, 3)
		slices.Sort(k)
		lo, key, hi := k[0], k[1], k[2]
		if key >= hi || key < lo {
			continue
		}
		if p := rangePrefix(lo, hi, ""); !strings.HasPrefix(key, p) {
			t.Fatalf("rangePrefix(%q, %q) = %q, but %q lies in the range", lo, hi, p, key)
		}
	}
}

// TestListSplitExact lists random and WAL-like key sets with many page
// sizes and worker counts: every key exactly once, the same as a sequential
// walk.
func TestListSplitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type set struct {
		name string
		keys []string
		root string
	}
	sets := []set{
		{"wal", walKeys("", 5000), ""},
		{"wal-under-root", append(walKeys("pg/main/", 3000), "pg/mainx/000000010000000000000001", "other", "pg/main/sub/", "pg/main/sub/x"), "pg/main/"},
		{"pgbackrest", pgbackrestKeys(3000), ""},
	}
	for i := range 40 {
		sets = append(sets, set{fmt.Sprintf("random-%d", i), randomKeys(r, 50+r.IntN(400)), ""})
	}
	for _, st := range sets {
		pageSizes := []int{1, 2, 3, 7, 64}
		if len(st.keys) > 1000 {
			pageSizes = []int{7, 64}
		}
		for _, pageSize := range pageSizes {
			for _, workers := range []int{1, 2, 16} {
				s, _ := memS3(st.keys, st.root, workers, pageSize)
				for _, prefix := range []string{"", "0", "00000001", "archive/", "sub/", "é", "~"} {
					name := fmt.Sprintf("%s/page=%d/workers=%d/prefix=%q", st.name, pageSize, workers, prefix)
					sameKeys(t, name, collect(t, s, prefix), want(st.keys, st.root, prefix))
				}
			}
		}
	}
}

// pgbackrestKeys returns keys laid out like a pgBackRest repository.
func pgbackrestKeys(segments int) []string {
	var keys []string
	for i := range segments {
		log, seg := i/256, i%256
		keys = append(keys, fmt.Sprintf("archive/main/16-1/%08X%08X/%08X%08X%08X-%040x.gz", 1, log, 1, log, seg, i*7919))
	}
	keys = append(keys, "archive/main/archive.info", "archive/main/archive.info.copy", "backup/main/backup.info")
	return keys
}

func TestListSplitRequests(t *testing.T) {
	// 100,000 segments in pages of 1000: the concurrent listing may make
	// more requests than the 100 of a sequential walk, but not many more.
	keys := walKeys("", 100000)
	seq, seqAPI := memS3(keys, "", 1, 1000)
	sameKeys(t, "sequential", collect(t, seq, ""), want(keys, "", ""))
	con, conAPI := memS3(keys, "", 16, 1000)
	sameKeys(t, "concurrent", collect(t, con, ""), want(keys, "", ""))
	t.Logf("requests: sequential %d, concurrent %d", seqAPI.requests.Load(), conAPI.requests.Load())
	if n := conAPI.requests.Load(); n > 2*seqAPI.requests.Load() {
		t.Errorf("concurrent listing made %d requests, sequential %d: splitting is too fine", n, seqAPI.requests.Load())
	}
}

func TestListOutOfOrder(t *testing.T) {
	s, api := memS3(walKeys("", 100), "", 4, 10)
	api.shuffle = true
	err := s.List(context.Background(), "", func(ObjectInfo) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "ascending order") {
		t.Fatalf("List over an unsorted server: err = %v, want an ordering error", err)
	}
}

func TestListFnErrorStops(t *testing.T) {
	stop := errors.New("stop here")
	for _, workers := range []int{1, 16} {
		s, _ := memS3(walKeys("", 3000), "", workers, 10)
		calls := 0
		err := s.List(context.Background(), "", func(ObjectInfo) error {
			calls++
			if calls == 25 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 25 {
			t.Fatalf("workers=%d: err = %v after %d calls, want the fn error after 25", workers, err, calls)
		}
	}
}

func TestListCancel(t *testing.T) {
	s, _ := memS3(walKeys("", 3000), "", 16, 10)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := s.List(ctx, "", func(ObjectInfo) error {
		calls++
		if calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("List after cancel: err = %v, want context.Canceled", err)
	}
}

// TestListNoLeak checks that the workers of an abandoned listing exit.
func TestListNoLeak(t *testing.T) {
	s, _ := memS3(walKeys("", 3000), "", 16, 10)
	// leaked sees running workers.
	inFn, release := make(chan bool), make(chan bool)
	go s.List(context.Background(), "", func(ObjectInfo) error {
		inFn <- true
		<-release
		return io.EOF
	})
	<-inFn
	if !leaked() {
		t.Fatal("leaked() does not see the workers of a running listing")
	}
	close(release)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_ = s.List(context.Background(), "", func(ObjectInfo) error { return io.EOF })
		})
	}
	wg.Wait()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic in fn did not reach List's caller")
			}
		}()
		_ = s.List(context.Background(), "", func(ObjectInfo) error { panic("fn fails") })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for leaked() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if leaked() {
		t.Fatal("list workers still running after List returned")
	}
}
