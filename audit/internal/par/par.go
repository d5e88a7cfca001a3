// Package par runs independent steps on several goroutines.
package par

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls fn(i) for every i in [0, n) on up to 2×GOMAXPROCS goroutines
// (the steps it is for wait on system calls or the network as much as on
// a core), and returns once all calls have returned or ctx is done; then
// the steps not started are skipped and ctx's error is returned. fn must
// write only its own i's results.
func For(ctx context.Context, n int, fn func(i int)) error {
	workers := min(2*runtime.GOMAXPROCS(0), n/64+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
