// Package login serves the pop-out window's authorization endpoint and the login connectors
// behind it: the brand's own landing page, an authenticating proxy's headers, or a demo login
// form over an htpasswd Secret. Every connector ends the same way: authorize.Complete issues a
// code or token for the person and the browser goes back to LivePerson's window.
package login

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Paths under the issuer, beside endpoints.AuthorizePath.
const (
	LoginPath          = "/authorize/login"
	AuthorizationsPath = "/api/v1/authorizations"
)

// Purposes of sealed values: a value sealed for one never opens as another.
const (
	purposeForm    = "lpauth-login-form-v1"
	purposeLanding = "lpauth-landing-v1"
)

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
		login := snap.Login
		switch {
		case login == nil:
			h.Log.Info("Authorization refused: no usable login connector", "clientID", client.ID, "problem", errString(snap.LoginProblem))
			h.errorPage(w, http.StatusServiceUnavailable, unavailable)
		case login.StaticUsers != nil:
			h.showForm(w, r, snap, req, noProblem, http.StatusOK)
		case login.TrustedHeaders != nil:
			h.fromHeaders(w, r, snap, client, req)
		case login.LandingPage != nil:
			h.toLandingPage(w, r, snap, req)
		case login.Upstream != nil:
			h.toUpstream(w, r, snap, req)
		}
	})
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
		h.Observe(r, oauth.Result{Endpoint: "authorize", ClientID: req.ClientID, Err: &oauth.Error{Code: aerr.Code, Reason: aerr.Description}})
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
		h.Observe(r, oauth.Result{Endpoint: "authorize", ClientID: client.ID, Flow: req.ResponseType})
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
