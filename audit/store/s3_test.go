package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestS3OpenViaRegistry(t *testing.T) {
	f := newFakeS3(t)
	f.put(t, "walarchive", "pg/main/000000010000000000000001", []byte("segment"))
	s, err := Open(context.Background(), f.url("walarchive", "pg/main/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*S3); !ok {
		t.Fatalf("Open(s3://…) = %T, want *S3", s)
	}
	if got, want := s.String(), "s3://walarchive/pg/main at "+f.srv.URL; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := collect(t, s, ""); len(got) != 1 || got[0] != "000000010000000000000001" {
		t.Errorf("listed %q, want the one segment relative to the prefix", got)
	}
}

func TestS3OptionsFromEnvironment(t *testing.T) {
	f := newFakeS3(t)
	f.put(t, "walarchive", "a", []byte("a"))
	t.Setenv(EnvS3Endpoint, f.srv.URL)
	t.Setenv(EnvS3PathStyle, "true")
	t.Setenv(EnvS3Region, "eu-west-3")
	s, err := Open(context.Background(), "s3://walarchive")
	if err != nil {
		t.Fatal(err)
	}
	if s3s := s.(*S3); s3s.region != "eu-west-3" || s3s.endpoint != f.srv.URL {
		t.Errorf("from the environment: region %q endpoint %q", s3s.region, s3s.endpoint)
	}
	// The URL wins over the environment, explicit options over both.
	s, err = OpenWith(context.Background(), "s3://walarchive?region=ap-south-1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.(*S3).region; r != "ap-south-1" {
		t.Errorf("URL region: got %q", r)
	}
	s, err = OpenWith(context.Background(), "s3://walarchive?region=ap-south-1", Options{S3: S3Options{Region: "sa-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.(*S3).region; r != "sa-east-1" {
		t.Errorf("explicit region: got %q", r)
	}
	t.Setenv(EnvS3PathStyle, "maybe")
	if _, err := Open(context.Background(), "s3://walarchive"); err == nil || !strings.Contains(err.Error(), EnvS3PathStyle) {
		t.Errorf("bad %s: err = %v", EnvS3PathStyle, err)
	}
}

func TestS3BadLocations(t *testing.T) {
	isolateAWS(t)
	ctx := context.Background()
	for _, c := range []struct{ loc, want string }{
		{"s3://" + testAccessKey + ":" + testSecretKey + "@walarchive/pg", "user information"},
		{"s3://walarchive/pg?endpoint=http://user:" + url.QueryEscape(testSecretKey) + "@127.0.0.1:1", "user information"},
		{"s3://walarchive/pg?endpoint=ftp://127.0.0.1:1", "scheme"},
		{"s3://walarchive/pg?endpont=http://127.0.0.1:1", "unknown s3 URL parameter"},
		{"s3://walarchive/pg?path-style=sure", "path-style"},
		{"s3:///pg", "no bucket"},
		{"s3://walarchive:9000/pg", "port"},
		{"s3://walarchive/pg?profile=no-such-profile&endpoint=http://127.0.0.1:1", "AWS_PROFILE"},
	} {
		_, err := Open(ctx, c.loc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): err = %v, want one mentioning %q", c.loc, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), testSecretKey) || strings.Contains(err.Error(), url.QueryEscape(testSecretKey)) {
			t.Errorf("Open(%q): the error shows the secret: %v", c.loc, err)
		}
	}
}

func TestS3Pagination(t *testing.T) {
	f := newFakeS3(t)
	const n = 2500
	keys := walKeys("pg/", n)
	for _, k := range keys {
		f.put(t, "walarchive", k, []byte("x"))
	}
	wantKeys := want(keys, "pg/", "")
	for _, workers := range []int{1, 16} {
		for _, page := range []int{100, 1000} {
			s := f.open(t, "walarchive", "pg", S3Options{ListWorkers: workers, ListPageSize: page})
			f.resetCounts()
			got := collect(t, s, "")
			sameKeys(t, fmt.Sprintf("workers=%d page=%d", workers, page), got, wantKeys)
			lists := f.lists.Load()
			t.Logf("workers=%d page=%d: %d list requests", workers, page, lists)
			if workers == 1 && lists != int64((len(wantKeys)+page-1)/page) {
				t.Errorf("sequential listing of %d keys in pages of %d took %d requests", len(wantKeys), page, lists)
			}
		}
	}
}

// TestS3ConcurrentMatchesSequential lists WAL and pgBackRest layouts with
// small pages through the real SDK and server: the concurrent listing finds
// exactly the keys of the sequential walk, each once, with several
// requests in flight.
func TestS3ConcurrentMatchesSequential(t *testing.T) {
	f := newFakeS3(t)
	var keys []string
	keys = append(keys, walKeys("", 4000)...)
	keys = append(keys, pgbackrestKeys(2000)...)
	keys = append(keys, "folder/", "folder/x", "x y", "é/1", "~tilde")
	for _, k := range keys {
		f.put(t, "walarchive", k, nil)
	}
	seq := f.open(t, "walarchive", "", S3Options{ListWorkers: 1, ListPageSize: 50})
	con := f.open(t, "walarchive", "", S3Options{ListWorkers: 16, ListPageSize: 50})
	f.setLatency(2 * time.Millisecond)
	for _, prefix := range []string{"", "archive/main/16-1/", "0000000100000005", "é"} {
		w := want(keys, "", prefix)
		s := collect(t, seq, prefix)
		sameKeys(t, "sequential "+prefix, s, w)
		f.resetCounts()
		c := collect(t, con, prefix)
		sameKeys(t, "concurrent "+prefix, c, w)
		if prefix == "" && f.maxIn.Load() < 4 {
			t.Errorf("concurrent listing had at most %d requests in flight", f.maxIn.Load())
		}
	}
}

func TestS3RangeRequest(t *testing.T) {
	f := newFakeS3(t)
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	f.put(t, "walarchive", "000000010000000000000001", body)
	s := f.open(t, "walarchive", "", S3Options{})
	var mu sync.Mutex
	var ranges []string
	var sent atomic.Int64
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/000000010000000000000001") {
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			f.inner.ServeHTTP(&countingWriter{ResponseWriter: w, n: &sent}, r)
			return true
		}
		return false
	})
	rc, err := s.OpenRange(context.Background(), "000000010000000000000001", 0, 8192)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(got) != 8192 || string(got) != string(body[:8192]) {
		t.Fatalf("read %d bytes, err %v; want the first 8192", len(got), err)
	}
	if len(ranges) != 1 || ranges[0] != "bytes=0-8191" {
		t.Errorf("Range headers sent: %q, want [bytes=0-8191]", ranges)
	}
	if n := sent.Load(); n != 8192 {
		t.Errorf("server sent %d body bytes for an 8 KiB range, want 8192", n)
	}
}

// TestS3RangeIgnored: a server that answers a range request with the whole
// object (200, no Content-Range) still yields the right bytes.
func TestS3RangeIgnored(t *testing.T) {
	f := newFakeS3(t)
	body := []byte("0123456789abcdefghij")
	f.put(t, "walarchive", "obj", body)
	s := f.open(t, "walarchive", "", S3Options{})
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("Range")
		f.inner.ServeHTTP(w, r)
		return true
	})
	got := readAll(t, func() (io.ReadCloser, error) { return s.OpenRange(context.Background(), "obj", 5, 4) })
	if string(got) != "5678" {
		t.Errorf("OpenRange(5, 4) over a server ignoring Range: %q, want %q", got, "5678")
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

// checkMessage fails unless err wraps sentinel (when not nil), mentions
// every part, and shows no credential.
func checkMessage(t *testing.T, what string, err, sentinel error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	t.Logf("%s: %v", what, err)
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s: %v\ndoes not wrap %v", what, err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v\ndoes not mention %q", what, err, p)
		}
	}
	if strings.Contains(err.Error(), testSecretKey) {
		t.Errorf("%s: the message shows the secret key: %v", what, err)
	}
	if msg := err.Error(); msg != strings.TrimSpace(msg) || strings.ToLower(msg[:1]) != msg[:1] {
		t.Errorf("%s: message not lowercase and trimmed: %q", what, msg)
	}
}

func TestS3MissingBucket(t *testing.T) {
	f := newFakeS3(t)
	_, err := Open(context.Background(), f.url("no-such-bucket", "pg"))
	checkMessage(t, "open a missing bucket", err, ErrNoBucket, "no-such-bucket", "bucket name", "s3://no-such-bucket/pg")
	if IsNotExist(err) {
		t.Errorf("a missing bucket is not a missing object: %v", err)
	}
}

func TestS3MissingObject(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "walarchive", "pg", S3Options{})
	_, err := s.Stat(context.Background(), "000000010000000000000001")
	checkMessage(t, "stat", err, ErrNotExist, "s3://walarchive/pg/000000010000000000000001")
	_, err = s.Open(context.Background(), "000000010000000000000001")
	checkMessage(t, "open", err, ErrNotExist, "s3://walarchive/pg/000000010000000000000001")
	for _, k := range []string{"", "/abs", "a/../b", "..", "../x", "dir/", "./a"} {
		if _, err := s.Stat(context.Background(), k); err == nil || IsNotExist(err) || !strings.Contains(err.Error(), "invalid object key") {
			t.Errorf("stat %q: err = %v, want an invalid key error", k, err)
		}
	}
}

func TestS3AccessDenied(t *testing.T) {
	f := newFakeS3(t)
	f.put(t, "walarchive", "pg/public", []byte("ok"))
	f.put(t, "walarchive", "pg/secret", []byte("no"))

	// Denied at open: the bucket cannot be listed.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
		return true
	})
	_, err := Open(context.Background(), f.url("walarchive", "pg"))
	checkMessage(t, "open a denied bucket", err, ErrAccessDenied, "s3://walarchive/pg", "credentials", "policies", "403")

	// Denied for one object only: HEAD (no body) and GET.
	f.setHook(nil)
	s := f.open(t, "walarchive", "pg", S3Options{})
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/secret") {
			s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
			return true
		}
		return false
	})
	_, err = s.Stat(context.Background(), "secret")
	checkMessage(t, "stat a denied object", err, ErrAccessDenied, "s3://walarchive/pg/secret", "credentials")
	_, err = s.Open(context.Background(), "secret")
	checkMessage(t, "open a denied object", err, ErrAccessDenied, "s3://walarchive/pg/secret", "s3:GetObject")
	if _, err := s.Stat(context.Background(), "public"); err != nil {
		t.Errorf("stat an allowed object: %v", err)
	}

	// Rejected credentials say so.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		s3Error(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return true
	})
	_, err = s.Open(context.Background(), "public")
	checkMessage(t, "open with a rejected key", err, ErrAccessDenied, "credentials were rejected", "AWS_PROFILE")
}

func TestS3NoCredentials(t *testing.T) {
	f := newFakeS3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	start := time.Now()
	_, err := Open(context.Background(), f.url("walarchive", "pg"))
	checkMessage(t, "open without credentials", err, ErrAccessDenied, "no usable credentials", "AWS_PROFILE")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to find there are no credentials", d)
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d unsigned requests reached the server", n)
	}
}

func TestS3WrongRegion(t *testing.T) {
	f := newFakeS3(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-Amz-Bucket-Region", "eu-central-1")
		s3Error(w, r, http.StatusMovedPermanently, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.")
		return true
	})
	_, err := Open(context.Background(), f.url("walarchive", "pg"))
	checkMessage(t, "open in the wrong region", err, nil, "eu-central-1", "--s3-region")
}

// TestS3RetriesThrottling fails the first requests with 503 SlowDown and
// checks that the store retries them.
func TestS3RetriesThrottling(t *testing.T) {
	f := newFakeS3(t)
	for _, k := range walKeys("", 300) {
		f.put(t, "walarchive", k, []byte("x"))
	}
	s := f.open(t, "walarchive", "", S3Options{MaxAttempts: 5, ListPageSize: 100, ListWorkers: 1})

	var failures atomic.Int64
	failFirst := func(n int64, status int, code string) {
		failures.Store(0)
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if failures.Add(1) <= n {
				s3Error(w, r, status, code, "Please reduce your request rate.")
				return true
			}
			return false
		})
		f.resetCounts()
	}

	failFirst(3, http.StatusServiceUnavailable, "SlowDown")
	if got := collect(t, s, ""); len(got) != 300 {
		t.Fatalf("listed %d keys through throttling, want 300", len(got))
	}
	if n := f.requests.Load(); n != 3+3 {
		t.Errorf("%d requests for 3 pages with 3 throttled, want 6", n)
	}

	failFirst(2, http.StatusInternalServerError, "InternalError")
	if _, err := s.Stat(context.Background(), "000000010000000000000001"); err != nil {
		t.Fatalf("stat through two 500s: %v", err)
	}
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d requests for a stat after two 500s, want 3", n)
	}

	// A server that keeps throttling: the attempts are bounded, the
	// message says so.
	failFirst(1000, http.StatusServiceUnavailable, "SlowDown")
	_, err := s.Open(context.Background(), "000000010000000000000001")
	checkMessage(t, "open while throttled", err, nil, "503", "5 attempts", "SlowDown")
	if n := f.requests.Load(); n != 5 {
		t.Errorf("%d requests, want MaxAttempts = 5", n)
	}

	// Concurrent listing under throttling: the retry quota must not run dry.
	f.setHook(nil)
	con := f.open(t, "walarchive", "", S3Options{MaxAttempts: 10, ListPageSize: 10, ListWorkers: 16})
	var n atomic.Int64
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if n.Add(1)%2 == 1 {
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return true
		}
		return false
	})
	for range 3 {
		sameKeys(t, "concurrent under throttling", collect(t, con, ""), want(walKeys("", 300), "", ""))
	}
}

func TestS3Unreachable(t *testing.T) {
	isolateAWS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	start := time.Now()
	_, err = OpenWith(context.Background(), "s3://walarchive/pg", Options{S3: S3Options{
		Endpoint: endpoint, PathStyle: true, Region: "us-east-1",
		MaxBackoff: 200 * time.Millisecond,
	}})
	checkMessage(t, "open an unreachable endpoint", err, ErrUnreachable, endpoint, "--s3-endpoint", "s3://walarchive/pg")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to give up on a closed port", d)
	}

	// The endpoint goes away after opening.
	f := newFakeS3(t)
	s := f.open(t, "walarchive", "pg", S3Options{MaxAttempts: 2})
	f.srv.Close()
	_, err = s.Stat(context.Background(), "x")
	checkMessage(t, "stat after the endpoint went away", err, ErrUnreachable, "could not connect")
}

func TestS3FolderMarkersSkipped(t *testing.T) {
	f := newFakeS3(t)
	for _, k := range []string{"pg/", "pg/sub/", "pg/sub/a", "pg/b"} {
		f.put(t, "walarchive", k, nil)
	}
	for _, workers := range []int{1, 4} {
		s := f.open(t, "walarchive", "pg", S3Options{ListWorkers: workers, ListPageSize: 1})
		sameKeys(t, "folder markers", collect(t, s, ""), []string{"b", "sub/a"})
	}
}
