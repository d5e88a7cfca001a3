package codec

import (
	"fmt"
	"io"
)

// LimitReader guards against decompression bombs: the returned reader
// yields rc's bytes up to limit and, if rc has more, one byte beyond together
// with an error wrapping [ErrTooLarge]; it never yields more than limit+1
// bytes, and the decompressor is never asked for more. Pass the segment
// size as limit for a WAL segment. A negative limit counts as 0. Close closes
// rc.
func LimitReader(rc io.ReadCloser, limit int64) io.ReadCloser {
	return &limitReader{rc: rc, max: max(limit, 0)}
}

type limitReader struct {
	rc  io.ReadCloser
	max int64
	n   int64 // bytes yielded
	err error
}

// Read implements io.Reader.
func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if rem := l.max + 1 - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.rc.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.max)
		return n, l.err
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

// Close closes the underlying reader.
func (l *limitReader) Close() error { return l.rc.Close() }
