// Package metrics exposes the token server's Prometheus metrics, on their own port so the public
// listener never serves them. Labels are bounded: endpoints, status codes, RFC 6749 error codes,
// flows and client names; never free text from a request.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Metrics holds the collectors of one token server.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	issued     *prometheus.CounterVec
	failures   *prometheus.CounterVec
	rebuilds   *prometheus.CounterVec
	rebuildDur prometheus.Histogram
	clients    prometheus.Gauge
	skipped    prometheus.Gauge
	builtAt    prometheus.Gauge
	keyActive  prometheus.Gauge
	staleSince prometheus.Gauge
	replayErrs *prometheus.CounterVec
	replayUp   prometheus.Gauge

	// failingSince is when rebuilds began to fail (zero while the last one built); only the
	// snapshot loop's goroutine calls OnBuild.
	failingSince time.Time
}

// New registers every collector in a fresh registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lpauth_http_requests_total", Help: "HTTP requests by endpoint and status code."}, []string{"endpoint", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lpauth_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"endpoint"})
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lpauth_tokens_issued_total", Help: "Codes and tokens issued, by endpoint, client and flow."}, []string{"endpoint", "client", "flow"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lpauth_request_failures_total", Help: "Refused requests by endpoint and OAuth error code."}, []string{"endpoint", "error"})
	m.rebuilds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lpauth_snapshot_rebuilds_total", Help: "Snapshot rebuilds by result."}, []string{"result"})
	m.rebuildDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lpauth_snapshot_rebuild_duration_seconds", Help: "Time to rebuild the snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.clients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_snapshot_clients", Help: "Clients served."})
	m.skipped = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_snapshot_problems", Help: "Objects left out of the last snapshot (see the logs)."})
	m.builtAt = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_snapshot_built_timestamp_seconds", Help: "When the served snapshot was built (its age is time() minus this)."})
	m.keyActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_active_key_activated_timestamp_seconds", Help: "When the signing key in use became Active."})
	m.staleSince = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_snapshot_stale_since_timestamp_seconds", Help: "When rebuilds of the snapshot began to fail, so the one served misses later changes; 0 while the last rebuild succeeded."})
	m.replayErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lpauth_replay_store_errors_total", Help: "Replay store failures of claims and checks, by kind: unavailable (not reached), refused (an error answer, a Redis that may evict, a full memory store), unknown (the claim may or may not have been made)."}, []string{"kind"})
	m.replayUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lpauth_replay_store_up", Help: "1 when the replay store's last claim or check succeeded, 0 when it failed: codes cannot be redeemed while it is 0."})
	for _, kind := range []replay.Kind{replay.KindUnavailable, replay.KindRefused, replay.KindUnknown} {
		m.replayErrs.WithLabelValues(string(kind)) // every kind at 0 from the start, so rate() sees the first error
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.issued, m.failures, m.rebuilds, m.rebuildDur, m.clients, m.skipped, m.builtAt, m.keyActive,
		m.staleSince, m.replayErrs, m.replayUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Observe counts an OAuth or issue-API result (an oauth.Observer).
func (m *Metrics) Observe(_ *http.Request, res oauth.Result) {
	if res.Err != nil {
		m.failures.WithLabelValues(res.Endpoint, errorLabel(res.Err.Code)).Inc()
		return
	}
	m.issued.WithLabelValues(res.Endpoint, res.ClientID, res.Flow).Inc()
}

// OnBuild records a snapshot rebuild (a cluster.Source hook).
func (m *Metrics) OnBuild(s *snapshot.Snapshot, problems []snapshot.Problem, err error, took time.Duration) {
	m.rebuildDur.Observe(took.Seconds())
	stale := err != nil
	for _, p := range problems {
		// Clients held back from a set whose Secrets disagree: a fold takes seconds, and one
		// that stays cut short would serve a deleted client with nothing else to say so.
		stale = stale || errors.Is(p.Err, snapshot.ErrStaleClients)
	}
	switch {
	case stale && m.failingSince.IsZero():
		m.failingSince = time.Now()
		m.staleSince.Set(float64(m.failingSince.Unix()))
	case !stale:
		m.failingSince = time.Time{}
		m.staleSince.Set(0)
	}
	if err != nil {
		m.rebuilds.WithLabelValues("error").Inc()
		return
	}
	m.rebuilds.WithLabelValues("ok").Inc()
	m.clients.Set(float64(len(s.Clients)))
	m.skipped.Set(float64(len(problems)))
	m.builtAt.Set(float64(s.Built.Unix()))
	m.keyActive.Set(float64(s.Built.Add(-s.ActiveKeyAge).Unix()))
}

// oauthErrors are the error codes the endpoints write (RFC 6749 5.2 and 4.1.2.1, RFC 6750 3.1).
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "access_denied": true, "unsupported_response_type": true,
	"server_error": true, "temporarily_unavailable": true, "invalid_token": true, "insufficient_scope": true,
}

// errorLabel bounds the error label: a code no endpoint should write counts as "other".
func errorLabel(code string) string {
	if oauthErrors[code] {
		return code
	}
	return "other"
}

// ReplayStore is s counted: each claim's failure by kind, and lpauth_replay_store_up. A store
// that can check itself (Redis, and Memory, which says whether it is full) is checked every
// interval until ctx ends, so a Redis that would refuse claims (one that may evict them) or
// cannot be reached shows while no code is redeemed, and a store that was full or down shows up
// again once it is not, without waiting for a claim; nothing else would show it: the token
// server's /readyz does not look at the replay store.
func (m *Metrics) ReplayStore(ctx context.Context, s replay.Store, every time.Duration) replay.Store {
	m.replayUp.Set(1)
	if c, ok := s.(interface{ Check(context.Context) error }); ok {
		go func() {
			for {
				err := c.Check(ctx)
				if ctx.Err() != nil {
					return // shutting down: a check cut short says nothing about the store
				}
				m.replayResult(err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(every):
				}
			}
		}()
	}
	return countedStore{Store: s, m: m}
}

type countedStore struct {
	replay.Store
	m *Metrics
}

func (c countedStore) Claim(ctx context.Context, id string, issued, expiry time.Time) (bool, error) {
	ok, err := c.Store.Claim(ctx, id, issued, expiry)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && replay.KindOf(err) != replay.KindRefused {
		// The client went away mid-claim (its request's context was cancelled): the claim was
		// cut short, which says nothing about the store, so it is neither a failure of some
		// kind ("unknown", "unavailable") nor the store down. A refusal is the store's answer,
		// and counts whatever the client did.
		return ok, err
	}
	c.m.replayResult(err)
	return ok, err
}

// replayResult counts a claim's or check's failure by kind, or says the store answered.
func (m *Metrics) replayResult(err error) {
	kind := replay.KindOf(err)
	if kind == "" {
		m.replayUp.Set(1)
		return
	}
	m.replayErrs.WithLabelValues(string(kind)).Inc()
	m.replayUp.Set(0)
}

// Instrument counts requests and their latency by endpoint.
func (m *Metrics) Instrument(endpoint func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		ep := endpoint(r)
		m.requests.WithLabelValues(ep, strconv.Itoa(sw.code)).Inc()
		m.latency.WithLabelValues(ep).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
