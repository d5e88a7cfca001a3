package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// s3API is the part of the S3 client the store uses. It is read-only by
// construction: there is no way to put, copy or delete through it.
type s3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// s3ProbeAttempts bounds the attempts of the probe NewS3 makes, so that an
// unreachable endpoint fails within seconds rather than after the full
// retry schedule.
const s3ProbeAttempts = 3

// s3DialTimeout bounds one TCP connect to the endpoint.
const s3DialTimeout = 10 * time.Second

// S3 is a read-only [Store] over the objects of an S3 bucket, or of an
// S3-compatible service, below a key prefix. Keys are relative to the
// prefix. It is safe for concurrent use.
type S3 struct {
	api      s3API
	bucket   string
	root     string // key prefix of the store: "" or ending in "/"
	endpoint string // for messages; "" for the SDK's default
	region   string
	attempts int
	workers  int
	pageSize int32
}

var _ Store = (*S3)(nil)

// NewS3 opens the objects of bucket below prefix (leading and trailing
// slashes do not matter; empty means the whole bucket) with opts taken as
// they are: unlike [Open] and [OpenWith] it reads no WALAUDIT_S3_*
// variable. It probes the bucket with one small list request, so that a
// wrong bucket, endpoint, region or credential fails here with an error
// wrapping [ErrNoBucket], [ErrAccessDenied] or [ErrUnreachable].
func NewS3(ctx context.Context, bucket, prefix string, opts S3Options) (*S3, error) {
	if bucket == "" || strings.ContainsAny(bucket, "/?#") {
		return nil, fmt.Errorf("invalid S3 bucket name %q", bucket)
	}
	opts = opts.orDefaults(S3Options{
		MaxAttempts:  DefaultS3MaxAttempts,
		MaxBackoff:   DefaultS3MaxBackoff,
		ListWorkers:  DefaultS3ListWorkers,
		ListPageSize: DefaultS3ListPageSize,
	})
	if opts.MaxAttempts < 1 || opts.ListWorkers < 1 || opts.ListPageSize < 1 || opts.MaxBackoff < 0 {
		return nil, fmt.Errorf("invalid S3 options: attempts %d, list workers %d and page size %d must be positive, max backoff %s not negative",
			opts.MaxAttempts, opts.ListWorkers, opts.ListPageSize, opts.MaxBackoff)
	}
	if opts.ListPageSize > DefaultS3ListPageSize {
		opts.ListPageSize = DefaultS3ListPageSize
	}
	endpoint, err := normalizeEndpoint(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	root := strings.Trim(prefix, "/")
	if root != "" {
		root += "/"
	}
	s := &S3{
		bucket:   bucket,
		root:     root,
		endpoint: endpoint,
		attempts: opts.MaxAttempts,
		workers:  opts.ListWorkers,
		pageSize: int32(opts.ListPageSize),
	}
	if strings.HasSuffix(bucket, "--x-s3") {
		// S3 Express directory buckets list keys out of order and take no
		// StartAfter: the key space cannot be split.
		s.workers = 1
	}

	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = s3DialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			// Keep a connection per list worker and a few for reads.
			t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 2*opts.ListWorkers)
		})
	load := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		// Packages do not write to stderr; errors carry what matters.
		config.WithLogger(logging.Nop{}),
		config.WithClientLogMode(0),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = opts.MaxBackoff
				// The client-side retry quota would fail a concurrent
				// listing under sustained throttling; the attempts
				// bound the retries instead.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(opts.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration for %s: check the profile (AWS_PROFILE) and the shared config and credentials files: %w", s, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	s.region = cfg.Region
	if cfg.Credentials != nil {
		cfg.Credentials = markedCredentials{cfg.Credentials}
	}
	s.api = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = opts.PathStyle
	})
	if err := s.probe(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// normalizeEndpoint checks an endpoint URL and gives it a scheme.
func normalizeEndpoint(e string) (string, error) {
	if e == "" {
		return "", nil
	}
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		// url.Parse's message quotes the URL; it may hold a password.
		return "", errors.New("invalid S3 endpoint: not a URL")
	}
	if u.User != nil {
		return "", fmt.Errorf("the S3 endpoint for host %q contains user information: pass credentials through the environment or a profile", u.Hostname())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("invalid S3 endpoint %q: the scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid S3 endpoint %q: want scheme://host[:port][/path]", u.Redacted())
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// probe checks that the bucket and prefix can be listed.
func (s *S3) probe(ctx context.Context) error {
	_, err := s.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  &s.bucket,
		Prefix:  &s.root,
		MaxKeys: aws.Int32(1),
	}, func(o *s3.Options) {
		o.RetryMaxAttempts = min(s.attempts, s3ProbeAttempts)
	})
	if err != nil {
		return s.fail("open", "", err)
	}
	return nil
}

// String returns s3://bucket/prefix, followed by " at " and the endpoint
// when one was configured. It never contains credentials.
func (s *S3) String() string { return s.where("") }

// where names an object, or a list prefix ("" for the store), for messages.
func (s *S3) where(key string) string {
	loc := strings.TrimSuffix("s3://"+s.bucket+"/"+s.root+key, "/")
	if s.endpoint != "" {
		loc += " at " + s.endpoint
	}
	return loc
}

// objectKey maps a store key to the bucket's key. Keys are relative,
// slash-separated and clean, as the Local store produces them.
func (s *S3) objectKey(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key ||
		key == ".." || strings.HasPrefix(key, "../") || strings.ContainsRune(key, 0) {
		return "", fmt.Errorf("invalid object key %q: want a relative slash-separated path without . or .. elements", key)
	}
	return s.root + key, nil
}

// Stat implements [Store] with a HEAD request.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return ObjectInfo{}, s.fail("stat", key, err)
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Open implements [Store] with a GET request. Reading the body is not
// retried: a connection lost while reading gives a read error.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return nil, s.fail("open", key, err)
	}
	return out.Body, nil
}

// OpenRange implements [RangeOpener] with an HTTP range request, so only
// the asked bytes are transferred. A server that ignores the range (answers
// 200 with the whole object) is tolerated: the reader skips and limits.
func (s *S3) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("open %s at offset %d: negative offset", s.where(key), off)
	}
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-"
	if n > 0 && off <= (1<<63-1)-n {
		rng += strconv.FormatInt(off+n-1, 10)
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k, Range: &rng})
	if err != nil {
		if isInvalidRange(err) {
			// The object exists and off is at or past its end.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail("open", key, err)
	}
	if out.ContentRange == nil {
		// Whole object: skip to off ourselves.
		if _, err := io.CopyN(io.Discard, out.Body, off); err != nil && !errors.Is(err, io.EOF) {
			out.Body.Close()
			return nil, fmt.Errorf("skip to offset %d of %s: %w", off, s.where(key), err)
		}
	} else if start, ok := contentRangeStart(*out.ContentRange); !ok || start != off {
		out.Body.Close()
		return nil, fmt.Errorf("open %s: asked for bytes from %d, the server answered Content-Range %q", s.where(key), off, *out.ContentRange)
	}
	return limitReadCloser(out.Body, n), nil
}

// contentRangeStart parses the first byte of "bytes first-last/size".
func contentRangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(first, 10, 64)
	return v, err == nil
}
