// Package server puts the token server's handlers behind one http.Handler, under the issuer's
// path, with the limits and timeouts a public endpoint needs. Routes are a fixed table matched
// by this package: the issuer's path is never made into an http.ServeMux pattern, where "{x}"
// or "{$}" would be wildcards and a malformed one a panic at every start.
package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/tokenserver/discovery"
	"github.com/lpauth/lpauth-operator/tokenserver/issueapi"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/metrics"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/popout"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
	"github.com/lpauth/lpauth-operator/tokenserver/token"
)

// Limits of the HTTP server. The pop-out window's authorize URL carries a state of several KB,
// so headers (the request line included) may be up to 64 KB.
const (
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 15 * time.Second
	IdleTimeout       = 90 * time.Second
)

// Config is what the handler is made of.
type Config struct {
	// Issuer decides the path prefix of every endpoint.
	Issuer  string
	Source  *snapshot.Holder
	Replay  replay.Store
	Now     func() time.Time
	Log     logr.Logger
	Observe oauth.Observer
	// Limiter counts failed client authentications at /token per client id and client address
	// (nil: the default, 429 after 10 failures, then one more per 6 s). A correct secret is never
	// refused, so others' failures cannot lock LivePerson out.
	Limiter *limiter.FailureLimiter
	// Metrics, when set, counts every request (served on its own port by the caller).
	Metrics *metrics.Metrics
	// Draining, when it reports true, makes /readyz answer 503: the server is stopping and a
	// load balancer that follows readiness should send it nothing new.
	Draining func() bool
	// LoginLimiter slows failed logins on the login form per user name and client address (nil:
	// the default, 5 failures then one attempt per 12 s), per client address (4 times the
	// burst) and loosely per user name (see popout's loginLimits).
	LoginLimiter *limiter.FailureLimiter
}

// Handler returns the token server's routes.
func Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = limiter.NewFailureLimiter(10, 6*time.Second)
		cfg.Limiter.Now = cfg.Now
	}
	if cfg.Metrics != nil && cfg.Observe == nil {
		cfg.Observe = cfg.Metrics.Observe
	}
	// prefix is the issuer's path, decoded, for the login pages' form actions and cookies; under
	// is the same path in the segments the router matches.
	prefix, under := "", []string(nil)
	if u, err := url.Parse(cfg.Issuer); err == nil {
		prefix = strings.TrimSuffix(u.Path, "/")
		under, _ = segments(strings.TrimSuffix(u.EscapedPath(), "/"))
	} else {
		cfg.Log.Info("Issuer is not a URL: only /healthz and /readyz are served", "issuer", cfg.Issuer)
	}
	if cfg.LoginLimiter == nil {
		cfg.LoginLimiter = limiter.NewFailureLimiter(5, 12*time.Second)
		cfg.LoginLimiter.Now = cfg.Now
	}
	pop := &popout.Handler{Source: cfg.Source, Replay: cfg.Replay, Now: cfg.Now, Log: cfg.Log.WithName("authorize"), Observe: cfg.Observe,
		Prefix: prefix, Secure: strings.HasPrefix(cfg.Issuer, "https://"), Limiter: cfg.LoginLimiter}
	issue := &issueapi.Handler{Source: cfg.Source, Replay: cfg.Replay, Now: cfg.Now, Log: cfg.Log.WithName("issueapi"), Observe: cfg.Observe}
	tok := &token.Handler{Source: cfg.Source, Replay: cfg.Replay, Now: cfg.Now, Log: cfg.Log.WithName("token"), Observe: cfg.Observe, Limiter: cfg.Limiter}
	// The route table is what the endpoint packages register: each route's name is its metric
	// label, and the router hands it to the handler (oauth.Endpoint), which reports it in its
	// oauth.Result: one name per route, wherever it is counted.
	var table []oauth.Route
	table = append(table, discovery.Routes(cfg.Source)...)
	table = append(table, tok.Route())
	table = append(table, pop.Routes()...)
	table = append(table, issue.Routes()...)
	rt := &router{under: under, routes: map[string]route{}, root: map[string]route{
		"/healthz": {"healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })},
		"/readyz": {"readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if cfg.Source.Snapshot() == nil {
				http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
				return
			}
			if cfg.Draining != nil && cfg.Draining() {
				http.Error(w, "stopping", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		})},
	}}
	for _, r := range table {
		if _, dup := rt.routes[r.Path]; dup {
			panic("server: two routes for " + r.Path)
		}
		rt.routes[r.Path] = route{r.Name, r.Handler}
	}
	var h http.Handler = rt
	if cfg.Metrics != nil {
		h = cfg.Metrics.Instrument(endpointName(rt), rt)
	}
	return securityHeaders(h)
}

// route is one endpoint: its handler and its metric label.
type route struct {
	name string
	h    http.Handler
}

// router serves fixed paths: routes under the issuer's path, root at the server's root (the
// probes). Paths are compared segment by segment with each segment decoded, as ServeMux does, so
// "%7B" and "{" are the same character and a client may escape more or less than the issuer is
// written, but "%2F" never ends a segment. Anything else, unclean paths included, is a 404:
// nothing is redirected.
type router struct {
	under  []string // the issuer's path in segments, "" first; nil when the issuer is no URL
	routes map[string]route
	root   map[string]route
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e, ok := rt.match(r); ok {
		e.h.ServeHTTP(w, oauth.WithEndpoint(r, e.name))
		return
	}
	http.NotFound(w, r)
}

func (rt *router) match(r *http.Request) (route, bool) {
	// The path as the client sent it: RawPath keeps "%2F" even when it holds characters that
	// EscapedPath would re-encode from Path, losing it.
	escaped := r.URL.RawPath
	if p, err := url.PathUnescape(escaped); escaped == "" || err != nil || p != r.URL.Path {
		escaped = r.URL.EscapedPath()
	}
	segs, ok := segments(escaped)
	if !ok || segs[0] != "" {
		return route{}, false
	}
	if e, ok := rt.root[fixedPath(segs[1:])]; ok {
		return e, true
	}
	if rt.under == nil || len(segs) < len(rt.under) || !slices.Equal(segs[:len(rt.under)], rt.under) {
		return route{}, false
	}
	e, ok := rt.routes[fixedPath(segs[len(rt.under):])]
	return e, ok
}

// segments splits an escaped path at '/' and decodes each segment: "/a/%7Bb%7D" is
// ["", "a", "{b}"].
func segments(escaped string) ([]string, bool) {
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = d
	}
	return segs, true
}

// fixedPath joins decoded segments into a path of the route table, or returns "" (no route)
// when a segment holds a decoded '/', which would forge a segment boundary.
func fixedPath(segs []string) string {
	for _, s := range segs {
		if strings.Contains(s, "/") {
			return ""
		}
	}
	return "/" + strings.Join(segs, "/")
}

// endpointName maps a request to a bounded metric label: its route's name, or "other".
func endpointName(rt *router) func(*http.Request) string {
	return func(r *http.Request) string {
		if e, ok := rt.match(r); ok {
			return e.name
		}
		return "other"
	}
}

// securityHeaders: nothing here is meant to be framed or sniffed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// NewHTTPServer returns an http.Server with bounded headers and timeouts.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h, MaxHeaderBytes: MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout,
	}
}
