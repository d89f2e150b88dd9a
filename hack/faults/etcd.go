package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// etcdRestarted: under /token load, etcd is stopped and started again on its data while
// everything is connected: the API server answers errors and ends every watch until etcd is
// back. The token servers serve throughout with no failed request and stay ready; a client
// created once the API server answers again is served within 2 s.
func etcdRestarted(ctx context.Context, c *cluster, base string, addrs []string) row {
	r := row{fault: "etcd restarted under /token load", recoverWhat: "API server answers again → a client created then served"}
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
	r.trials = 1

	l := newLP(c, base)
	var o outcome
	var doubles atomic.Int64
	stop := make(chan struct{})
	wg := l.redemptions(8, stop, &o, &doubles)
	unready, stopProbes := watchReadiness(addrs)
	time.Sleep(2 * time.Second)

	etcd := c.env.ControlPlane.Etcd
	start := time.Now()
	if err := etcd.Stop(); err != nil {
		fail("stopping etcd: %v", err)
	}
	if err := etcd.Start(); err != nil {
		fail("starting etcd again: %v", err)
	}
	etcdDown := time.Since(start)
	// A change after etcd is back reaches the token servers within 2 s of the API server
	// answering again.
	var apiBack time.Time
	if err := poll(ctx, 60*time.Second, "the API server to answer after etcd's restart", func() (bool, error) {
		var ts v1alpha1.TokenServer
		err := c.k8s.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: c.tokenName}, &ts)
		apiBack = time.Now()
		return err == nil, nil
	}); err != nil {
		fail("%v", err)
	}
	afterRestart, err := c.implicitClient(ctx, "after-etcd")
	if err != nil {
		fail("%v", err)
	} else if at, err := c.waitServed(ctx, base, afterRestart, http.StatusOK); err != nil {
		fail("%v", err)
	} else {
		// From when the API server first answered, before the client was even created.
		d := at.Sub(apiBack)
		if d > 2*time.Second {
			fail("a client created after etcd came back was served %s after the API server answered (want under 2 s)", d.Round(time.Millisecond))
		}
		r.recover = d
		r.notes += fmt.Sprintf("etcd down %s (SIGTERM, start, healthy); ", etcdDown.Round(time.Millisecond))
	}

	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	stopProbes()
	finishStrict(&r, &o, unready.Load(), doubles.Load(), fail)
	return r
}

// implicitClient creates an implicit-flow client (it needs no secret, so the token servers
// serve it from the object alone) named <prefix>-<n>.
func (c *cluster) implicitClient(ctx context.Context, prefix string) (*v1alpha1.LivePersonAuthClient, error) {
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000)
	lc := &v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace}, Spec: v1alpha1.LivePersonAuthClientSpec{
		TokenServerRef: v1alpha1.LocalObjectReference{Name: c.tokenName}, AccountID: "12345678", Flow: v1alpha1.FlowImplicit, ClientID: "lp-" + name}}
	if err := c.k8s.Create(ctx, lc); err != nil {
		return nil, fmt.Errorf("creating client %s: %w", name, err)
	}
	return lc, nil
}

// served is the issue API's answer to a token for the implicit client lc.
func (c *cluster) served(base string, lc *v1alpha1.LivePersonAuthClient) int {
	l := newLP(c, base)
	l.clientID = lc.Spec.ClientID
	_, status, err := l.implicitToken()
	if err != nil {
		return 0
	}
	return status
}

// waitServed waits until the issue API answers one of want for lc, on every try for 300 ms (so
// both token servers behind the proxy agree), and says when that began.
func (c *cluster) waitServed(ctx context.Context, base string, lc *v1alpha1.LivePersonAuthClient, want ...int) (time.Time, error) {
	var firstGood time.Time
	err := poll(ctx, 30*time.Second, fmt.Sprintf("client %s answered %v", lc.Name, want), func() (bool, error) {
		status := c.served(base, lc)
		for _, w := range want {
			if status == w {
				if firstGood.IsZero() {
					firstGood = time.Now()
				}
				return time.Since(firstGood) >= 300*time.Millisecond, nil
			}
		}
		firstGood = time.Time{}
		return false, nil
	})
	if err != nil || firstGood.IsZero() {
		return time.Now(), err
	}
	return firstGood, nil
}

// watchReadiness samples every token server's /readyz every 100 ms until the returned stop is
// called, counting the answers that were not ready.
func watchReadiness(addrs []string) (*atomic.Int64, func()) {
	var unready atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, a := range addrs {
				if !probe(a) {
					unready.Add(1)
				}
			}
		}
	})
	return &unready, func() { close(done); wg.Wait() }
}
