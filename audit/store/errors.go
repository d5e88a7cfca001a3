package store

import "errors"

// Sentinel errors that remote stores wrap, next to [ErrNotExist], so that
// callers (the CLI's exit-code switch) can tell configuration problems apart
// without knowing which SDK produced them. Test them with errors.Is. The
// wrapping error's message says what to check; it never contains
// credentials.
var (
	// ErrAccessDenied is wrapped when the store refused the request (HTTP
	// 403: missing permission, bad or expired credentials) or when no
	// credentials could be found to sign it.
	ErrAccessDenied = errors.New("store: access denied")

	// ErrNoBucket is wrapped when the bucket named by the location does not
	// exist at the endpoint (or in the region) the store talks to.
	ErrNoBucket = errors.New("store: no such bucket")

	// ErrUnreachable is wrapped when the endpoint could not be reached at
	// all: refused or timed-out connections, unknown host names, TLS
	// failures. The retries the store makes on such errors are over.
	ErrUnreachable = errors.New("store: endpoint unreachable")
)
