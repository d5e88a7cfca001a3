package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Environment variables that give defaults for [S3Options] to [Open] and
// [OpenWith] when neither the Options nor the location URL set the field.
// The CLI can bind its --s3-endpoint, --s3-region and --s3-path-style flags
// to the same names. Everything else (credentials, profile, region) also
// comes from the AWS SDK's own environment and shared config files.
const (
	EnvS3Endpoint  = "WALAUDIT_S3_ENDPOINT"
	EnvS3Region    = "WALAUDIT_S3_REGION"
	EnvS3PathStyle = "WALAUDIT_S3_PATH_STYLE"
)

// Defaults for the zero fields of [S3Options].
const (
	DefaultS3MaxAttempts  = 10
	DefaultS3MaxBackoff   = 20 * time.Second
	DefaultS3ListWorkers  = 16
	DefaultS3ListPageSize = 1000
)

// Options tunes how [OpenWith] opens a location. The zero value opens it as
// [Open] does.
type Options struct {
	// S3 applies to s3:// locations. Its non-zero fields take precedence
	// over the location URL's query parameters, which take precedence over
	// the WALAUDIT_S3_* environment variables.
	S3 S3Options
}

// S3Options configures an [S3] store. Zero fields take the defaults the
// field docs name; credentials are not options: they come from the AWS SDK's
// standard chain (environment, shared config and credentials files and
// their profiles, web identity, container and EC2 instance roles).
//
// In an s3:// location URL the query parameters endpoint, region,
// path-style and profile set the fields of the same names, for example
// s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path-style=true.
type S3Options struct {
	// Endpoint is the base URL of an S3-compatible service, such as
	// http://127.0.0.1:9000 for MinIO; a bare host:port gets https://.
	// Empty means AWS S3, or the endpoint the SDK configuration names
	// (AWS_ENDPOINT_URL_S3, endpoint_url in the profile). It must not
	// contain user information, a query or a fragment.
	Endpoint string
	// Region is the bucket's region. Empty uses the SDK configuration
	// (AWS_REGION, the profile's region), and us-east-1 if that has none.
	Region string
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key, as MinIO and Ceph RGW usually need.
	PathStyle bool
	// Profile selects a shared config profile; empty uses AWS_PROFILE, or
	// "default".
	Profile string
	// MaxAttempts bounds the attempts per request, the first included
	// (default [DefaultS3MaxAttempts]). Throttling (503 SlowDown), other 5xx
	// answers and connection errors are retried with exponential backoff and
	// jitter. Opening a store probes the bucket with at most 3 attempts so
	// that a wrong endpoint fails quickly.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts (default
	// [DefaultS3MaxBackoff]).
	MaxBackoff time.Duration
	// ListWorkers bounds the list requests one List call has in flight
	// (default [DefaultS3ListWorkers]); 1 lists sequentially.
	ListWorkers int
	// ListPageSize is the number of keys asked for per list request
	// (default and maximum [DefaultS3ListPageSize]).
	ListPageSize int
}

// orDefaults fills the zero fields of o from d.
func (o S3Options) orDefaults(d S3Options) S3Options {
	if o.Endpoint == "" {
		o.Endpoint = d.Endpoint
	}
	if o.Region == "" {
		o.Region = d.Region
	}
	if !o.PathStyle {
		o.PathStyle = d.PathStyle
	}
	if o.Profile == "" {
		o.Profile = d.Profile
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	if o.ListWorkers == 0 {
		o.ListWorkers = d.ListWorkers
	}
	if o.ListPageSize == 0 {
		o.ListPageSize = d.ListPageSize
	}
	return o
}

// s3OptionsFromEnv reads the WALAUDIT_S3_* variables through getenv.
func s3OptionsFromEnv(getenv func(string) string) (S3Options, error) {
	o := S3Options{
		Endpoint: strings.TrimSpace(getenv(EnvS3Endpoint)),
		Region:   strings.TrimSpace(getenv(EnvS3Region)),
	}
	if v := strings.TrimSpace(getenv(EnvS3PathStyle)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return S3Options{}, fmt.Errorf("%s=%q: want true or false", EnvS3PathStyle, v)
		}
		o.PathStyle = b
	}
	return o, nil
}

// s3OptionsFromQuery reads the query parameters of an s3:// URL. Unknown
// parameters are an error, so that a typo does not go unnoticed.
func s3OptionsFromQuery(q url.Values) (S3Options, error) {
	var o S3Options
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := q[k]
		if len(vs) != 1 {
			return S3Options{}, fmt.Errorf("s3 URL parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			o.Endpoint = v
		case "region":
			o.Region = v
		case "profile":
			o.Profile = v
		case "path-style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Options{}, fmt.Errorf("s3 URL parameter path-style=%q: want true or false", v)
			}
			o.PathStyle = b
		default:
			return S3Options{}, fmt.Errorf("unknown s3 URL parameter %q: use endpoint, region, path-style or profile", k)
		}
	}
	return o, nil
}

// OpenWith is [Open] with options for the stores that take them. For an
// s3:// location the effective [S3Options] are opts.S3, then the URL's query
// parameters, then the WALAUDIT_S3_* environment, field by field (the first
// non-zero value wins). Other locations ignore opts.
func OpenWith(ctx context.Context, location string, opts Options) (Store, error) {
	if i := strings.Index(location, "://"); i > 0 && strings.EqualFold(location[:i], "s3") {
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("parse archive URL %q: %w", location, err)
		}
		return openS3URL(ctx, u, opts.S3)
	}
	return Open(ctx, location)
}

func init() {
	Register("s3", func(ctx context.Context, u *url.URL) (Store, error) {
		return openS3URL(ctx, u, S3Options{})
	})
}

// openS3URL opens s3://bucket/prefix with explicit options over the URL's
// query over the environment.
func openS3URL(ctx context.Context, u *url.URL, explicit S3Options) (*S3, error) {
	if u.User != nil {
		// Do not echo the URL: the user information may be a secret.
		return nil, fmt.Errorf("s3 URL for bucket %q contains user information: pass credentials through the environment or a profile, never in the URL", u.Hostname())
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("s3 URL %q names no bucket: use s3://bucket/prefix", u.Redacted())
	}
	if u.Port() != "" {
		return nil, fmt.Errorf("s3 URL %q has a port: use s3://bucket/prefix and give the endpoint with --s3-endpoint", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("s3 URL %q has a fragment", u.Redacted())
	}
	fromQuery, err := s3OptionsFromQuery(u.Query())
	if err != nil {
		return nil, err
	}
	fromEnv, err := s3OptionsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	return NewS3(ctx, u.Host, u.Path, explicit.orDefaults(fromQuery).orDefaults(fromEnv))
}
