package store

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials the tests put in the environment. The secret must never show
// up in a message.
const (
	testAccessKey = "AKIAWALAUDITTEST0001"
	testSecretKey = "walaudit-test-secret-do-not-print"
)

// isolateAWS points the SDK's credential chain at test credentials only:
// no shared config files, no instance metadata, no endpoint or region from
// the machine running the tests.
func isolateAWS(tb testing.TB) {
	tb.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      testAccessKey,
		"AWS_SECRET_ACCESS_KEY":                  testSecretKey,
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_S3":                    "",
		"AWS_CONFIG_FILE":                        "/nonexistent/walaudit-test/config",
		"AWS_SHARED_CREDENTIALS_FILE":            "/nonexistent/walaudit-test/credentials",
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		EnvS3Endpoint:                            "",
		EnvS3Region:                              "",
		EnvS3PathStyle:                           "",
	} {
		tb.Setenv(k, v)
	}
}

// fakeS3 is a real S3 protocol server on 127.0.0.1: gofakes3 over its
// in-memory backend, behind a handler the tests use to count requests,
// add latency and inject failures.
type fakeS3 struct {
	backend *s3mem.Backend
	inner   http.Handler // the gofakes3 server, for hooks that pass a request on
	srv     *httptest.Server

	requests atomic.Int64 // all requests that reached the wrapper
	lists    atomic.Int64 // GET requests on a bucket (list requests)
	inflight atomic.Int64
	maxIn    atomic.Int64 // most requests in flight at once

	mu      sync.Mutex
	latency time.Duration
	hook    func(w http.ResponseWriter, r *http.Request) bool // true: answered
	replay  map[string]*httptest.ResponseRecorder             // list answers by URL, when not nil
}

// newFakeS3 starts a server with the bucket "walarchive".
func newFakeS3(tb testing.TB) *fakeS3 {
	tb.Helper()
	isolateAWS(tb)
	f := &fakeS3{backend: s3mem.New()}
	faker := gofakes3.New(f.backend)
	inner := faker.Server()
	f.inner = inner
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.isList(r) {
			f.lists.Add(1)
		}
		n := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for {
			m := f.maxIn.Load()
			if n <= m || f.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		f.mu.Lock()
		latency, hook := f.latency, f.hook
		f.mu.Unlock()
		if latency > 0 {
			time.Sleep(latency)
		}
		if hook != nil && hook(w, r) {
			return
		}
		if f.isList(r) && f.replayList(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	tb.Cleanup(f.srv.Close)
	if err := f.backend.CreateBucket("walarchive"); err != nil {
		tb.Fatal(err)
	}
	return f
}

// isList reports a list request: a GET on a bucket.
func (f *fakeS3) isList(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0
}

// replayLists makes the server answer each list request it has answered
// before from a copy of that answer. Benchmarks use it to take the fake's
// own CPU time (gofakes3 encoding XML, which a remote S3 would do on its
// own machines) off the cores the client under test runs on.
func (f *fakeS3) replayLists() {
	f.mu.Lock()
	f.replay = map[string]*httptest.ResponseRecorder{}
	f.mu.Unlock()
}

// replayList answers r from the replay cache, filling it on a miss. It
// reports false when replay is off.
func (f *fakeS3) replayList(w http.ResponseWriter, r *http.Request) bool {
	key := r.URL.Path + "?" + r.URL.RawQuery
	f.mu.Lock()
	if f.replay == nil {
		f.mu.Unlock()
		return false
	}
	rec := f.replay[key]
	f.mu.Unlock()
	if rec == nil {
		rec = httptest.NewRecorder()
		f.inner.ServeHTTP(rec, r)
		f.mu.Lock()
		f.replay[key] = rec
		f.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
	return true
}

// setHook installs h (nil removes it); h answers a request by returning true.
func (f *fakeS3) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// setLatency delays every request.
func (f *fakeS3) setLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// resetCounts zeroes the request counters.
func (f *fakeS3) resetCounts() {
	f.requests.Store(0)
	f.lists.Store(0)
	f.maxIn.Store(0)
}

// put stores an object through the fake's backend API (test fixtures only;
// the store itself cannot write).
func (f *fakeS3) put(tb testing.TB, bucket, key string, body []byte) {
	tb.Helper()
	meta := map[string]string{"Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	if _, err := f.backend.PutObject(bucket, key, meta, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		tb.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// options returns store options for this server with fast retries.
func (f *fakeS3) options() S3Options {
	return S3Options{
		Endpoint:    f.srv.URL,
		Region:      "us-east-1",
		PathStyle:   true,
		MaxAttempts: 4,
		MaxBackoff:  20 * time.Millisecond,
	}
}

// url returns an s3:// location for bucket/prefix on this server.
func (f *fakeS3) url(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&path-style=true&region=us-east-1", bucket, prefix, f.srv.URL)
}

// open opens bucket/prefix on this server with opts over f.options().
func (f *fakeS3) open(tb testing.TB, bucket, prefix string, opts S3Options) *S3 {
	tb.Helper()
	s, err := NewS3(context.Background(), bucket, prefix, opts.orDefaults(f.options()))
	if err != nil {
		tb.Fatalf("open s3://%s/%s: %v", bucket, prefix, err)
	}
	return s
}

// s3Error writes an S3 XML error answer.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "WALAUDITTEST")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>WALAUDITTEST</RequestId></Error>`, code, msg)
	}
}
