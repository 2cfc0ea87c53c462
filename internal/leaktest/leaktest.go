// Package leaktest checks that a test leaves no goroutine behind.
package leaktest

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// Check counts the goroutines now and, when t ends (after the cleanups
// registered later, which run first), waits up to 15 s for the count to
// come back down, failing t with every goroutine's stack if it does not.
func Check(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for runtime.NumGoroutine() > before {
			select {
			case <-ctx.Done():
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}
