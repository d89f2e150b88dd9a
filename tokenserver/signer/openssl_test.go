//go:build openssl && cgo

package signer_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

// make bench tells a redemption's signature from the rest of its CPU by the signing threads'
// name, so the threads must carry it: one per usable core.
func TestSigningThreadsAreNamed(t *testing.T) {
	jwk, err := keys.Generate(v1alpha1.RS256, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.New(keys.Key{JWK: jwk, State: v1alpha1.KeyActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign([]byte(`{}`)); err != nil { // the threads are running once it returns
		t.Fatal(err)
	}
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil || len(comms) == 0 {
		t.Skipf("no /proc/self/task here: %v", err)
	}
	named := 0
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == signer.ThreadName {
			named++
		}
	}
	if want := runtime.GOMAXPROCS(0); named != want {
		t.Errorf("%d threads named %q, want one per usable core (%d)", named, signer.ThreadName, want)
	}
}
