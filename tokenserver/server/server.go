// Package server puts the token server's handlers behind one http.Handler, under the issuer's
// path, with the limits and timeouts a public endpoint needs.
package server

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/tokenserver/discovery"
	"github.com/lpauth/lpauth-operator/tokenserver/endpoints"
	"github.com/lpauth/lpauth-operator/tokenserver/issueapi"
	"github.com/lpauth/lpauth-operator/tokenserver/login"
	"github.com/lpauth/lpauth-operator/tokenserver/metrics"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
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
	// Limiter slows repeated failed client authentications (nil: the default, 10 failures then
	// one attempt per 6 s per client id).
	Limiter *oauth.FailureLimiter
	// Metrics, when set, counts every request (served on its own port by the caller).
	Metrics *metrics.Metrics
	// LoginLimiter slows repeated failed logins on the login form, per user name and per
	// address (nil: the default, 5 failures then one attempt per 12 s).
	LoginLimiter *oauth.FailureLimiter
}

// Handler returns the token server's routes.
func Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = oauth.NewFailureLimiter(10, 6*time.Second)
	}
	if cfg.Metrics != nil && cfg.Observe == nil {
		cfg.Observe = cfg.Metrics.Observe
	}
	prefix := ""
	if u, err := url.Parse(cfg.Issuer); err == nil {
		prefix = strings.TrimSuffix(u.Path, "/")
	}
	if cfg.LoginLimiter == nil {
		cfg.LoginLimiter = oauth.NewFailureLimiter(5, 12*time.Second)
	}
	pop := &login.Handler{Source: cfg.Source, Replay: cfg.Replay, Now: cfg.Now, Log: cfg.Log.WithName("authorize"), Observe: cfg.Observe,
		Prefix: prefix, Secure: strings.HasPrefix(cfg.Issuer, "https://"), Limiter: cfg.LoginLimiter}
	issue := &issueapi.Handler{Source: cfg.Source, Now: cfg.Now, Log: cfg.Log.WithName("issueapi"), Observe: cfg.Observe}
	mux := http.NewServeMux()
	mux.Handle(prefix+endpoints.DiscoveryPath, discovery.Configuration(cfg.Source))
	mux.Handle(prefix+endpoints.JWKSPath, discovery.JWKS(cfg.Source))
	mux.Handle(prefix+endpoints.TokenPath, &oauth.TokenHandler{
		Source: cfg.Source, Replay: cfg.Replay, Now: cfg.Now, Log: cfg.Log.WithName("token"), Observe: cfg.Observe, Limiter: cfg.Limiter,
	})
	mux.Handle(prefix+endpoints.AuthorizePath, pop.Authorize())
	mux.Handle(prefix+login.LoginPath, pop.Login())
	mux.Handle(prefix+login.CallbackPath, pop.Callback())
	mux.Handle(prefix+login.AuthorizationsPath, pop.Authorizations())
	mux.Handle(prefix+endpoints.IssueAPIPath+"/codes", issue.Codes())
	mux.Handle(prefix+endpoints.IssueAPIPath+"/tokens", issue.Tokens())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Source.Snapshot() == nil {
			http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var h http.Handler = mux
	if cfg.Metrics != nil {
		h = cfg.Metrics.Instrument(endpointName(prefix), mux)
	}
	return securityHeaders(h)
}

// endpointName maps a request to a bounded metric label.
func endpointName(prefix string) func(*http.Request) string {
	names := map[string]string{
		prefix + endpoints.TokenPath: "token", prefix + endpoints.JWKSPath: "jwks", prefix + endpoints.DiscoveryPath: "discovery",
		prefix + endpoints.AuthorizePath: "authorize", prefix + endpoints.IssueAPIPath + "/codes": "issue_codes",
		prefix + endpoints.IssueAPIPath + "/tokens": "issue_tokens", "/healthz": "healthz", "/readyz": "readyz",
		prefix + login.LoginPath: "authorize_login", prefix + login.AuthorizationsPath: "authorizations", prefix + login.CallbackPath: "authorize_callback",
	}
	return func(r *http.Request) string {
		if n, ok := names[r.URL.Path]; ok {
			return n
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
