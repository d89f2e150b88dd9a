//go:build openssl && cgo

package signer

import (
	"sync"
	"testing"
)

// BenchmarkHandoff is what a signature costs besides RSA: queueing a job for the signing
// threads, waking one, and waking the goroutine on its eventfd. The job carries no context, so
// the thread answers at once (unsigned). Run it on one core, as the token server runs in the
// pinned bench: taskset -c 0 go test -tags openssl -run '^$' -bench Handoff -cpu 1 ./tokenserver/signer/
func BenchmarkHandoff(b *testing.B) {
	if err := startWorkers(); err != nil {
		b.Fatal(err)
	}
	for _, inFlight := range []int{1, 16} {
		b.Run(map[int]string{1: "one-at-a-time", 16: "16-in-flight"}[inFlight], func(b *testing.B) {
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range inFlight {
				n := b.N / inFlight // b.N jobs in all
				if g < b.N%inFlight {
					n++
				}
				wg.Go(func() {
					for range n {
						if _, err := sign(&signCtx{}, [32]byte{}); err == nil {
							b.Error("a job without a context was signed")
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
