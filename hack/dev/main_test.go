package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// A taken port is the commonest failure of `make dev`: it must say so, not print a stack trace.
func TestDevSaysWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"--listen", ln.Addr().String()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "another process is using it") || !strings.Contains(err.Error(), "DEV_LISTEN=") {
		t.Fatalf("dev on a taken port = %v, want a message naming the port and the way out", err)
	}
}

// Regression: once clients waited for their TokenServer to be Ready, dev waited for the sample
// client before starting the token server that makes it Ready, and gave up after a minute.
// Here: the banner comes, the token server answers, and it all stops cleanly.
func TestDevServesTheSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("an embedded control plane: skipped by -short")
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set (make test sets it)")
	}
	sameProcessAgain = true // -count=N runs this test, and so the operator, again in this process
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", addr, "--state-dir", t.TempDir()}, out, io.Discard) }()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops everything") {
		select {
		case err := <-done:
			t.Fatalf("dev stopped before its banner: %v\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner after 90 s:\n%s", out.String())
		}
	}
	resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("JWKS: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev stopped with %v, want a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("dev did not stop within 30 s of being asked")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
