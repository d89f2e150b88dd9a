// Package popout is the pop-out window's authorization flow, in the shape Dex gives it: GET
// /authorize is parsed and checked (package authorize), then handed to the Connector of the
// TokenServer's spec.login — the brand's own landing page, its upstream OpenID provider, an
// authenticating proxy's headers, or a demo login form over an htpasswd Secret. Every connector
// ends the same way: authorize.Complete issues a code or token for the person and the browser
// goes back to LivePerson's window.
package popout

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// LoginPath is the login form's route (staticUsers), beside endpoints.AuthorizePath.
const LoginPath = "/authorize/login"

// purposeForm marks a sealed login form: a value sealed for another purpose never opens as one.
const purposeForm = "lpauth-login-form-v1"

// formTTL is how long a login form stays usable.
const formTTL = v1alpha1.LoginFormTTL

// Handler serves /authorize and the connectors' own routes.
type Handler struct {
	Source  oauth.Source
	Replay  replay.Store
	Now     func() time.Time
	Log     logr.Logger
	Observe oauth.Observer
	// Prefix is the issuer's path; Secure marks cookies Secure (an https issuer).
	Prefix string
	Secure bool
	// Limiter counts failed logins on the login form per user name and client address, per
	// client address, and loosely per user name (loginLimits).
	Limiter *limiter.FailureLimiter

	providers providers
}

// Authorize serves GET /authorize.
func (h *Handler) Authorize() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Log.Info("Authorization refused: not a GET", "method", r.Method)
			h.errorPage(w, http.StatusMethodNotAllowed, linkNotValid)
			return
		}
		snap, client, req, ok := h.checked(w, r)
		if !ok {
			return
		}
		c := h.connector(snap.Login)
		if c == nil {
			h.Log.Info("Authorization refused: no usable login connector", "clientID", client.ID, "problem", errString(snap.LoginProblem))
			h.errorPage(w, http.StatusServiceUnavailable, unavailable)
			return
		}
		c.Begin(w, r, Flow{Snap: snap, Client: client, Req: req})
	})
}

// Connector logs a person in for the pop-out window: one kind per spec.login field. Begin gets
// an authorization request that passed its checks; the connector either completes it at once
// (Handler.complete) or sends the browser somewhere that comes back to a route of its own, which
// completes it. Routes lists every connector's routes.
type Connector interface {
	Begin(w http.ResponseWriter, r *http.Request, f Flow)
}

// Flow is one checked authorization request: the snapshot it was checked against, its client,
// and the request as LivePerson sent it.
type Flow struct {
	Snap   *snapshot.Snapshot
	Client *snapshot.Client
	Req    authorize.Request
}

// connector is the Connector of the TokenServer's spec.login, or nil when it has none usable.
func (h *Handler) connector(l *snapshot.Login) Connector {
	switch {
	case l == nil:
		return nil
	case l.StaticUsers != nil:
		return staticUsers{h}
	case l.TrustedHeaders != nil:
		return trustedHeaders{h}
	case l.LandingPage != nil:
		return landingPage{h}
	case l.Upstream != nil:
		return upstreamOIDC{h}
	}
	return nil
}

// Routes are the pop-out window's endpoints: /authorize, and the routes connectors come back
// to. (The landing page's completion is the brand backend's call to the issue API.)
func (h *Handler) Routes() []oauth.Route {
	return []oauth.Route{
		{Name: "authorize", Path: endpoints.AuthorizePath, Handler: h.Authorize()},
		{Name: "authorize_login", Path: LoginPath, Handler: h.Login()},
		{Name: "authorize_callback", Path: CallbackPath, Handler: h.Callback()},
	}
}

// checked parses and checks a request, answering the browser itself when it is refused.
func (h *Handler) checked(w http.ResponseWriter, r *http.Request) (*snapshot.Snapshot, *snapshot.Client, authorize.Request, bool) {
	snap := h.Source.Snapshot()
	if snap == nil {
		h.Log.Info("Authorization refused: no configuration loaded yet")
		h.errorPage(w, http.StatusServiceUnavailable, unavailable)
		return nil, nil, authorize.Request{}, false
	}
	req, err := authorize.Parse(r.URL.RawQuery)
	if err != nil {
		h.Log.Info("Authorization refused", "reason", err.Error())
		h.errorPage(w, http.StatusBadRequest, linkNotValid)
		return nil, nil, req, false
	}
	client, aerr := authorize.Check(snap, req)
	if aerr != nil {
		h.refused(w, r, req, aerr)
		return nil, nil, req, false
	}
	return snap, client, req, true
}

// refused shows a page for errors that must not redirect, and redirects the others.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, req authorize.Request, aerr *authorize.Error) {
	h.Log.Info("Authorization refused", "error", aerr.Code, "reason", aerr.Description, "clientID", req.ClientID)
	if h.Observe != nil {
		h.Observe(r, oauth.Result{Endpoint: oauth.Endpoint(r), ClientID: req.ClientID, Err: &oauth.Error{Code: aerr.Code, Reason: aerr.Description}})
	}
	if aerr.Page {
		h.errorPage(w, http.StatusBadRequest, linkNotValid)
		return
	}
	redirect(w, authorize.ErrorLocation(req, aerr))
}

// complete issues the code or token for id and sends the browser back to LivePerson.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, client *snapshot.Client, req authorize.Request, id idtoken.Identity) {
	loc, err := authorize.Complete(snap, client, req, id, h.Now())
	if err != nil {
		h.Log.Info("Authorization failed", "clientID", client.ID, "reason", err.Error())
		h.errorPage(w, http.StatusBadRequest, failed)
		return
	}
	if h.Observe != nil {
		h.Observe(r, oauth.Result{Endpoint: oauth.Endpoint(r), ClientID: client.ID, Flow: req.ResponseType})
	}
	redirect(w, loc)
}

// identity is what a connector learned, mapped through the client's claimsFromIdentity.
func identity(client *snapshot.Client, sub string, claims map[string]string) idtoken.Identity {
	return idtoken.Identity{Subject: sub, Claims: idtoken.FromIdentityClaims(client, claims)}
}

func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func errString(err error) string {
	if err == nil {
		return "spec.login is not set"
	}
	return err.Error()
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}
