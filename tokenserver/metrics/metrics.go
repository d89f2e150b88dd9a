// Package metrics exposes the token server's Prometheus metrics, on their own port so the public
// listener never serves them. Labels are bounded: endpoints, status codes, RFC 6749 error codes,
// flows and client names; never free text from a request.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
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
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.issued, m.failures, m.rebuilds, m.rebuildDur, m.clients, m.skipped, m.builtAt, m.keyActive,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Observe counts an OAuth or issue-API result (an oauth.Observer).
func (m *Metrics) Observe(_ *http.Request, res oauth.Result) {
	if res.Err != nil {
		m.failures.WithLabelValues(res.Endpoint, res.Err.Code).Inc()
		return
	}
	m.issued.WithLabelValues(res.Endpoint, res.ClientID, res.Flow).Inc()
}

// OnBuild records a snapshot rebuild (a cluster.Source hook).
func (m *Metrics) OnBuild(s *snapshot.Snapshot, problems []snapshot.Problem, err error, took time.Duration) {
	m.rebuildDur.Observe(took.Seconds())
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
