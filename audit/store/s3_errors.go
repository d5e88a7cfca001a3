package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fail turns an SDK error from operation op on key ("" for the store
// itself) into the store's error: it names the object, wraps the matching
// sentinel ([ErrNotExist], [ErrNoBucket], [ErrAccessDenied],
// [ErrUnreachable]) and says what to check, and it wraps the SDK error too.
// SDK messages carry request IDs but never credentials.
func (s *S3) fail(op, key string, err error) error {
	where := s.where(key)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	kind, hint := s.classify(err)
	switch {
	case kind == ErrNotExist:
		// An answer, not a failure: the SDK's text adds nothing.
		return fmt.Errorf("%s %s: %w", op, where, ErrNotExist)
	case kind != nil:
		return fmt.Errorf("%s %s: %w: %s: %w", op, where, kind, hint, err)
	case hint != "":
		return fmt.Errorf("%s %s: %s: %w", op, where, hint, err)
	default:
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
}

// classify maps an SDK error to a sentinel (or nil) and a hint (or "").
func (s *S3) classify(err error) (kind error, hint string) {
	var credErr *credentialsError
	var signErr *v4.SigningError
	if errors.As(err, &credErr) || errors.As(err, &signErr) {
		return ErrAccessDenied, "no usable credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile (AWS_PROFILE), or run with an IAM role"
	}

	status := 0
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}

	switch code {
	case "NoSuchKey", "NotFound":
		return ErrNotExist, ""
	case "NoSuchBucket":
		return ErrNoBucket, fmt.Sprintf("check the bucket name %q, and that the endpoint and region (%s) are where it lives", s.bucket, s.region)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidSecurity":
		return ErrAccessDenied, "the credentials were rejected: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the profile (AWS_PROFILE) and the shared credentials file, or refresh expired session credentials"
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		return ErrAccessDenied, "the credentials in use lack permission (s3:ListBucket on the bucket, s3:GetObject on its objects): check the profile (AWS_PROFILE) or role, and the IAM and bucket policies"
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return nil, s.regionHint(respErr)
	}

	switch {
	case status == http.StatusForbidden:
		return ErrAccessDenied, "the service refused the request (403): check the credentials, the profile (AWS_PROFILE) or role, and the IAM and bucket policies"
	case status == http.StatusMovedPermanently || status == http.StatusBadRequest && respErr != nil && respErr.Response.Header.Get("X-Amz-Bucket-Region") != "":
		return nil, s.regionHint(respErr)
	case status == http.StatusNotFound:
		return nil, "the endpoint answered 404 without naming a missing bucket or key: check the endpoint URL and path-style addressing"
	case status >= 500:
		attempts := 1
		var maxErr *retry.MaxAttemptsError
		if errors.As(err, &maxErr) {
			attempts = maxErr.Attempt
		}
		return nil, fmt.Sprintf("the service kept failing (HTTP %d) after %d attempts: retry later, or allow more attempts", status, attempts)
	case status != 0:
		return nil, ""
	}

	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	var dnsErr *net.DNSError
	if errors.As(err, &sendErr) || errors.As(err, &netErr) || errors.As(err, &dnsErr) {
		hint := "could not connect: check the endpoint (--s3-endpoint), the network and any proxy settings"
		if s.endpoint != "" {
			hint = "could not connect to " + s.endpoint + ": check the endpoint (--s3-endpoint), the network and any proxy settings"
		}
		if dnsErr != nil && dnsErr.IsNotFound {
			hint += ", and the bucket name: without path-style addressing (--s3-path-style) it is part of the host name"
		}
		return ErrUnreachable, hint
	}
	return nil, ""
}

// regionHint says which region to use, when the answer names it.
func (s *S3) regionHint(respErr *smithyhttp.ResponseError) string {
	if respErr != nil && respErr.Response != nil {
		if r := respErr.Response.Header.Get("X-Amz-Bucket-Region"); r != "" && r != s.region {
			return fmt.Sprintf("the bucket is in region %s, not %s: pass --s3-region %s", r, s.region, r)
		}
	}
	return fmt.Sprintf("the bucket is not in region %s: pass its region with --s3-region", s.region)
}

// isInvalidRange reports a 416 answer to a range request.
func isInvalidRange(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// credentialsError marks a failure to obtain credentials from the SDK's
// chain, as opposed to credentials the service rejected.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "retrieve credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// markedCredentials wraps the SDK's (cached) credential provider so that its
// failures can be told apart: the SDK reports them as untyped errors.
type markedCredentials struct{ aws.CredentialsProvider }

// Retrieve implements aws.CredentialsProvider.
func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err: err}
	}
	return c, nil
}
