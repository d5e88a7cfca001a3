// Package s3test serves a fake S3 (gofakes3) on loopback for tests that
// drive the real AWS SDK, with the SDK isolated from the machine's
// configuration. (audit/store's own tests cannot import it: it imports
// audit/store.)
package s3test

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/walaudit/walaudit/audit/store"
)

// Test credentials; the secret must never show up in a message.
const (
	AccessKey = "AKIAWALAUDITTEST0001"
	SecretKey = "walaudit-test-secret-do-not-print"
)

// Isolate points the SDK's credential chain at the test credentials only:
// no shared config files, no instance metadata, no endpoint or region from
// the machine running the tests.
func Isolate(tb testing.TB) {
	tb.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "AWS_CONFIG_FILE": "/nonexistent/walaudit-test/config",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/walaudit-test/credentials", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		store.EnvS3Endpoint: "", store.EnvS3Region: "", store.EnvS3PathStyle: "",
	} {
		tb.Setenv(k, v)
	}
}

// Serve isolates the SDK, starts gofakes3 with the given buckets (closed
// when the test ends) and returns its backend and endpoint URL.
func Serve(tb testing.TB, buckets ...string) (*s3mem.Backend, string) {
	tb.Helper()
	Isolate(tb)
	be := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(be).Server())
	tb.Cleanup(srv.Close)
	for _, b := range buckets {
		if err := be.CreateBucket(b); err != nil {
			tb.Fatal(err)
		}
	}
	return be, srv.URL
}
