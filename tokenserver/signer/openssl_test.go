//go:build openssl && cgo

package signer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// make bench tells a redemption's signature from the rest of its CPU by the signing threads'
// name, so every thread started must carry it once the workers are started.
func TestSigningThreadsAreNamed(t *testing.T) {
	if err := startWorkers(); err != nil {
		t.Fatal(err)
	}
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil || len(comms) == 0 {
		t.Skipf("no /proc/self/task here: %v", err)
	}
	named := 0
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == ThreadName {
			named++
		}
	}
	if named != workers.started || named == 0 {
		t.Errorf("%d threads named %q, want the %d signing threads started", named, ThreadName, workers.started)
	}
}
