package tokenserver

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// Regression (make faults, rolling restart): a stopping token server closed its idle keep-alive
// connections at once, and a request already on its way on one failed (EOF). Now, for the
// drain delay, it keeps serving and closes each connection after its response.
func TestAStoppingServerClosesConnectionsAfterAnswering(t *testing.T) {
	t.Parallel()
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(ctx, &http.Server{Handler: s.Handler}, ln, 2*time.Second, time.Second, logr.Discard())
	}()

	get := func() (*http.Response, error) {
		resp, err := http.Get(base)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := get(); err != nil || resp.Close {
		t.Fatalf("serving: %v, close %v; want a kept-alive answer", err, resp != nil && resp.Close)
	}
	stop()
	// Serve sees the stop on its own goroutine: until then answers still keep the connection.
	// Every request of the drain delay must be answered, and one soon must close.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		resp, err := get()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("draining, %v after the stop: %v; want an answer", time.Since(start), err)
		}
		if resp.Close {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("draining: no answer closed its connection within 1 s of the stop")
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v after the drain", err)
	}
	if _, err := get(); err == nil {
		t.Error("still serving after the drain delay")
	}
}
