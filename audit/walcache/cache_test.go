package walcache_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walaudit/walaudit/audit/wal"
	"github.com/walaudit/walaudit/audit/walcache"
	"github.com/walaudit/walaudit/walname"
)

// summary is a small summary that differs with n.
func summary(n int) *wal.SegmentSummary {
	seg := walname.SegNo(1 + n)
	start := walname.MinSegmentSize.StartLSN(seg)
	return &wal.SegmentSummary{
		File: walname.SegmentName(1, seg, walname.MinSegmentSize), TLI: 1, SegNo: seg, SystemID: 7000000000000000001,
		SegmentSize: walname.MinSegmentSize, PageSize: 8192, Magic: 0xD110, Major: 15, Size: 1 << 20,
		FirstRecord: start + 40, LastRecord: start + 400, Records: 3 + n, RecordsByRmgr: map[string]int{"Heap": 3 + n},
		Events: []wal.Event{{Kind: wal.EventCommit, LSN: start + 400, EndLSN: start + 440, PrevEnd: start + 400, XID: uint32(700 + n),
			Time: time.Unix(1795221342, int64(n)*1000).UTC(), WalLevel: -1}},
		End: start + 440, Header: make([]byte, 40), BlockSize: 8192, Pages: 1,
		PageTLIs: []wal.PageTLI{{Page: 0, TLI: 1}}, Starts: wal.RecordStarts{5, 10, byte(n%100 + 20)},
	}
}

func key(n int) walcache.Key {
	return walcache.Key{Location: "file:///srv/wal", Object: fmt.Sprintf("000000010000000000000%03X", n+1),
		Size: 1 << 20, ModTime: time.Unix(1795221342, 123456789), ETag: ""}
}

func open(t testing.TB, dir string) *walcache.Cache {
	t.Helper()
	c, err := walcache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a dir with spaces & symbols?")
	c := open(t, dir)
	if _, ok, err := c.Get(ctx, key(1)); ok || err != nil {
		t.Fatalf("empty cache: hit %v, %v", ok, err)
	}
	if err := c.Put(ctx, key(1), summary(1)); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, key(1))
	if err != nil || !ok {
		t.Fatalf("after put: hit %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got, summary(1)) {
		t.Errorf("got %+v\nwant %+v", got, summary(1))
	}
	// Another file under the same name: a miss, until its summary is put.
	for name, k := range map[string]walcache.Key{
		"size":     {Location: key(1).Location, Object: key(1).Object, Size: 1<<20 + 1, ModTime: key(1).ModTime},
		"mtime":    {Location: key(1).Location, Object: key(1).Object, Size: 1 << 20, ModTime: key(1).ModTime.Add(time.Nanosecond)},
		"etag":     {Location: key(1).Location, Object: key(1).Object, Size: 1 << 20, ModTime: key(1).ModTime, ETag: "abc"},
		"location": {Location: "s3://bucket/wal", Object: key(1).Object, Size: 1 << 20, ModTime: key(1).ModTime},
	} {
		if _, ok, err := c.Get(ctx, k); ok || err != nil {
			t.Errorf("changed %s: hit %v, %v", name, ok, err)
		}
	}
	k := key(1)
	k.ModTime = k.ModTime.Add(time.Second)
	if err := c.Put(ctx, k, summary(2)); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := c.Get(ctx, k); !ok || got.Records != summary(2).Records {
		t.Errorf("replaced file: hit %v, %+v", ok, got)
	}
	if _, ok, _ := c.Get(ctx, key(1)); ok {
		t.Error("the replaced file's old identity still hits")
	}
	// A second handle, as another process would have, sees the rows.
	if got, ok, err := open(t, dir).Get(ctx, k); !ok || err != nil || got.Records != summary(2).Records {
		t.Errorf("second handle: hit %v, %v", ok, err)
	}
	// PutAll stores several in one transaction; another handle sees them.
	if err := c.PutAll(ctx, []walcache.Entry{{Key: key(4), Summary: summary(4)}, {Key: key(5), Summary: summary(5)}}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{4, 5} {
		if got, ok, err := open(t, dir).Get(ctx, key(i)); !ok || err != nil || !reflect.DeepEqual(got, summary(i)) {
			t.Errorf("PutAll %d: hit %v, %v", i, ok, err)
		}
	}
	if err := c.PutAll(ctx, []walcache.Entry{{Key: key(6)}}); err == nil {
		t.Error("PutAll of a nil summary must fail")
	}
	// Released rows are read again from the database, and puts after a
	// release are kept.
	c.Release()
	if got, ok, err := c.Get(ctx, k); !ok || err != nil || !reflect.DeepEqual(got, summary(2)) {
		t.Errorf("after Release: hit %v, %v, %+v", ok, err, got)
	}
	c.Release()
	if err := c.Put(ctx, key(3), summary(3)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(ctx, key(3)); !ok || err != nil || !reflect.DeepEqual(got, summary(3)) {
		t.Errorf("put after Release: hit %v, %v", ok, err)
	}
}

func TestCorruptRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	for i := range 6 {
		if err := c.Put(ctx, key(i), summary(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Damage the rows behind the cache's back.
	db := rawDB(t, c.Path())
	for i, stmt := range []string{
		"UPDATE summaries SET summary = x'00' WHERE object = ?",
		"UPDATE summaries SET summary = substr(summary, 1, 20) WHERE object = ?",
		"UPDATE summaries SET size = 'not a number' WHERE object = ?",
		"UPDATE summaries SET version = 999 WHERE object = ?",
		"UPDATE summaries SET summary = 'text, not a blob', crc = 'x' WHERE object = ?",
	} {
		if _, err := db.Exec(stmt, key(i).Object); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// A damaged blob with a matching CRC: the decoder rejects it.
	if _, err := db.Exec(`UPDATE summaries SET summary = CAST('WSUM garbage' AS BLOB), crc = ? WHERE object = ?`,
		crcOf([]byte("WSUM garbage")), key(5).Object); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if s, ok, err := c.Get(ctx, key(i)); ok || err != nil || s != nil {
			t.Errorf("damaged row %d: hit %v, %v", i, ok, err)
		}
	}
	// Putting again repairs.
	if err := c.Put(ctx, key(0), summary(0)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Get(ctx, key(0)); !ok || err != nil {
		t.Errorf("after a new put: hit %v, %v", ok, err)
	}
}

func TestDisabled(t *testing.T) {
	ctx := context.Background()
	for _, c := range []*walcache.Cache{walcache.Disabled(), nil, {}} {
		if err := c.Put(ctx, key(1), summary(1)); err != nil {
			t.Error(err)
		}
		if s, ok, err := c.Get(ctx, key(1)); s != nil || ok || err != nil {
			t.Errorf("disabled cache hit: %v %v", ok, err)
		}
		if err := c.Close(); err != nil || c.Path() != "" {
			t.Error(err)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("WALAUDIT_CACHE_DIR", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	d, err := walcache.DefaultDir()
	if err != nil {
		t.Skip(err)
	}
	c := open(t, "")
	if filepath.Dir(c.Path()) != d || filepath.Base(d) != "walaudit" {
		t.Errorf("cache at %s, default dir %s", c.Path(), d)
	}
	// $WALAUDIT_CACHE_DIR overrides it.
	own := t.TempDir()
	t.Setenv("WALAUDIT_CACHE_DIR", own)
	if c := open(t, ""); filepath.Dir(c.Path()) != own {
		t.Errorf("with WALAUDIT_CACHE_DIR=%s the cache is at %s", own, c.Path())
	}
}

// TestProcesses runs this test binary twice more as helper processes that
// write and read the same cache at the same time as this one.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	const per = 400
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([][]byte, 2)
	for p := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WALCACHE_HELPER_DIR="+dir, "WALCACHE_HELPER_ID="+strconv.Itoa(p), "WALCACHE_HELPER_N="+strconv.Itoa(per))
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[p], errs[p] = cmd.CombinedOutput()
		}()
	}
	// This process reads meanwhile.
	c := open(t, dir)
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	rounds := 0
	for seen := 0; seen < 2*per && time.Now().Before(deadline); rounds++ {
		seen = 0
		for p := range 2 {
			for i := range per {
				s, ok, err := c.Get(ctx, helperKey(p, i))
				if err != nil {
					t.Fatalf("read while others write: %v", err)
				}
				if ok {
					seen++
					if s.Records != 3+i {
						t.Fatalf("process %d key %d: a summary of another file", p, i)
					}
				}
			}
		}
	}
	wg.Wait()
	for p := range 2 {
		if errs[p] != nil {
			t.Fatalf("helper %d: %v\n%s", p, errs[p], outs[p])
		}
		if !strings.Contains(string(outs[p]), "helper wrote") {
			t.Fatalf("helper %d did not run:\n%s", p, outs[p])
		}
		t.Logf("helper %d: %s", p, strings.TrimSpace(strings.SplitN(string(outs[p]), "\n", 2)[0]))
	}
	t.Logf("reader saw %d rounds while the helpers wrote", rounds)
	// Every key is there, including those both wrote.
	for p := range 2 {
		for i := range per {
			if _, ok, err := c.Get(ctx, helperKey(p, i)); !ok || err != nil {
				t.Errorf("process %d key %d missing: %v", p, i, err)
			}
		}
	}
	for i := range per {
		if s, ok, err := c.Get(ctx, sharedKey(i)); !ok || err != nil || s.Records != 3+i {
			t.Errorf("shared key %d: hit %v, %v", i, ok, err)
		}
	}
}

func helperKey(p, i int) walcache.Key {
	k := key(i)
	k.Object = fmt.Sprintf("p%d/%s", p, k.Object)
	return k
}

func sharedKey(i int) walcache.Key {
	k := key(i)
	k.Object = "shared/" + k.Object
	return k
}

// TestHelperProcess is a helper process of TestProcesses, not a test: it
// puts its own keys and the shared ones, reading the other process's as
// it goes.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("WALCACHE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	id, _ := strconv.Atoi(os.Getenv("WALCACHE_HELPER_ID"))
	n, _ := strconv.Atoi(os.Getenv("WALCACHE_HELPER_N"))
	c, err := walcache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	start := time.Now()
	defer func() { fmt.Printf("helper wrote %d summaries in %v\n", 2*n, time.Since(start)) }()
	for i := range n {
		if err := c.Put(ctx, helperKey(id, i), summary(i)); err != nil {
			t.Fatal(err)
		}
		if err := c.Put(ctx, sharedKey(i), summary(i)); err != nil {
			t.Fatal(err)
		}
		if s, ok, err := c.Get(ctx, helperKey(1-id, i)); err != nil || ok && s.Records != 3+i {
			t.Fatalf("read of the other process's key %d: %v", i, err)
		}
		if _, ok, err := c.Get(ctx, helperKey(id, i)); !ok || err != nil {
			t.Fatalf("own key %d not read back: %v", i, err)
		}
	}
}

func TestOpenDamagedDatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, walcache.FileName), []byte("not a database, just some bytes of garbage ..."), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := walcache.Open(dir); err == nil {
		c.Close()
		t.Error("a file that is no database opened")
	}
}

// TestCachedChain: summaries of the real WAL fixtures, put by one run and
// read by the next, give the chain verdict of fresh scans.
func TestCachedChain(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "wal", "testdata", "*.gz"))
	if len(paths) == 0 {
		t.Skip("no fixtures")
	}
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	var fresh []*wal.SegmentSummary
	var keys []walcache.Key
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".gz")
		sum, err := wal.ScanSegment(zr, name, wal.Options{SegmentSize: walname.MinSegmentSize})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		k := walcache.Key{Location: "file://" + filepath.Dir(p), Object: filepath.Base(p), Size: st.Size(), ModTime: st.ModTime()}
		if err := c.Put(ctx, k, sum); err != nil {
			t.Fatal(err)
		}
		fresh, keys = append(fresh, sum), append(keys, k)
	}
	c2 := open(t, dir)
	var cached []*wal.SegmentSummary
	for _, k := range keys {
		s, ok, err := c2.Get(ctx, k)
		if !ok || err != nil {
			t.Fatalf("%s: hit %v, %v", k.Object, ok, err)
		}
		cached = append(cached, s)
	}
	opts := wal.Options{SegmentSize: walname.MinSegmentSize}
	start := fresh[0].StartLSN()
	var a, b int
	e1, err1 := wal.WalkChain(fresh, start, opts, func(*wal.Event) bool { a++; return true })
	e2, err2 := wal.WalkChain(cached, start, opts, func(*wal.Event) bool { b++; return true })
	if e1 != e2 || fmt.Sprint(err1) != fmt.Sprint(err2) || a != b || a == 0 {
		t.Errorf("fresh: %s %v %d events; cached: %s %v %d events", e1, err1, a, e2, err2, b)
	}
}

// TestReplacedByAnotherProcess: a handle that has loaded a location sees
// the summary another handle put since for a replaced file, and decodes
// a row once for every Get.
func TestReplacedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	if err := a.Put(ctx, key(1), summary(1)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Get(ctx, key(1)); !ok || err != nil {
		t.Fatalf("own put: hit %v, %v", ok, err)
	}
	k := key(1)
	k.Size++
	if err := b.Put(ctx, k, summary(2)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Get(ctx, k); !ok || err != nil || !reflect.DeepEqual(got, summary(2)) {
		t.Fatalf("replaced by another handle: hit %v, %v", ok, err)
	}
	if _, ok, _ := a.Get(ctx, key(1)); ok {
		t.Error("the replaced file's old identity still hits")
	}
	s1, _, _ := b.Get(ctx, k)
	s2, _, _ := b.Get(ctx, k)
	if s1 == nil || s1 != s2 {
		t.Error("a row was decoded again")
	}
}
