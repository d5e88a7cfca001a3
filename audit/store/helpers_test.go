package store

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
)

// goroutineID returns the running goroutine's number, from its stack
// header "goroutine N [running]:". Tests use it to check that List calls fn
// on the caller's goroutine.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// leaked reports whether a list worker goroutine is still running.
func leaked() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), "store.(*S3).listConcurrent.func")
}
