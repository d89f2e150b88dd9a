package popout

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// CallbackPath is where the brand's identity provider sends the browser back.
const CallbackPath = "/authorize/callback"

const (
	purposeUpstream      = "lpauth-upstream-v1"
	purposeUpstreamState = "lpauth-upstream-state-v1"
	upstreamCookie       = "lpauth_upstream"
	upstreamTTL          = v1alpha1.UpstreamLoginTTL
	// upstreamTimeout bounds each call to the identity provider: a token exchange, a JWKS fetch.
	upstreamTimeout = 10 * time.Second
)

// Discovery of the identity provider, shared by every visitor (see providers).
const (
	// discoveryTimeout bounds one fetch of the discovery document. Providers answer in well
	// under a second; visitors wait no longer than this (or until they leave).
	discoveryTimeout = 5 * time.Second
	// discoveryTTL is how long a document is used without asking again. Endpoints rarely change;
	// an older document is still used while a newer one is fetched.
	discoveryTTL = time.Hour
	// discoveryRetryAfter is how long a failed fetch is not repeated: a down provider costs one
	// request per window, not one per visitor.
	discoveryRetryAfter = 10 * time.Second
)

// upstreamState travels, sealed, in a short-lived cookie from /authorize to the callback: it
// ties the callback to this browser (ID), the id_token to this login (nonce), and the code to
// this exchange (PKCE verifier). It stays small: browsers drop cookies over 4 KB.
type upstreamState struct {
	ID       string `json:"i"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// upstreamRequest is the upstream state parameter, sealed: LivePerson's request (whose own
// state alone may exceed a cookie) and the ID that binds it to the cookie.
type upstreamRequest struct {
	ID  string            `json:"i"`
	Req authorize.Request `json:"r"`
}

// providers caches discovery per upstream issuer, so /authorize does not wait on the identity
// provider once it is known, and waits at most one shared fetch when it is not:
//   - one fetch per issuer at a time, whatever the number of visitors waiting for it;
//   - the fetch runs on a context of its own (discoveryTimeout), so a visitor who gives up
//     stops waiting at once without cancelling the fetch the others wait for;
//   - a failure is remembered for discoveryRetryAfter: visitors meanwhile get it at once;
//   - a document older than discoveryTTL is still answered while its successor is fetched in
//     the background (and after that fetch fails: the last good endpoints are the best guess).
//
// The provider's JWKS is cached by its *oidc.Provider (Provider.Verifier's shared key set:
// one fetch in flight on a context of its own, waiters bounded by theirs).
//
// The zero value is ready to use.
type providers struct {
	mu     sync.Mutex
	byName map[string]*discovery
}

// discovery is what is known of one issuer. Guarded by providers.mu.
type discovery struct {
	pr       *oidc.Provider // the last good document, nil until one arrived
	staleAt  time.Time      // when pr is to be fetched again
	err      error          // why the last fetch failed, nil after a success
	retryAt  time.Time      // no new fetch before then after a failure
	inFlight *fetch         // the fetch under way, nil when none is
}

// fetch is one discovery request; pr and err are set before done is closed.
type fetch struct {
	done chan struct{}
	pr   *oidc.Provider
	err  error
}

// get returns issuer's provider, fetching its discovery document if need be; now is the clock
// of the cache's windows.
func (p *providers) get(ctx context.Context, issuer string, now func() time.Time) (*oidc.Provider, error) {
	p.mu.Lock()
	if p.byName == nil {
		p.byName = map[string]*discovery{}
	}
	d := p.byName[issuer]
	if d == nil {
		d = &discovery{}
		p.byName[issuer] = d
	}
	t := now()
	if d.pr != nil {
		if !t.Before(d.staleAt) && d.inFlight == nil && !t.Before(d.retryAt) {
			p.start(issuer, d, now)
		}
		pr := d.pr
		p.mu.Unlock()
		return pr, nil
	}
	if d.err != nil && t.Before(d.retryAt) {
		err := d.err
		p.mu.Unlock()
		return nil, err
	}
	f := d.inFlight
	if f == nil {
		f = p.start(issuer, d, now)
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.pr, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the identity provider's discovery document: %w", ctx.Err())
	}
}

// start fetches issuer's discovery document in the background. p.mu must be held.
func (p *providers) start(issuer string, d *discovery, now func() time.Time) *fetch {
	f := &fetch{done: make(chan struct{})}
	d.inFlight = f
	go func() {
		// Not any visitor's context: the fetch is shared, and outlives whoever started it.
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		defer cancel()
		pr, err := oidc.NewProvider(oidc.ClientContext(ctx, upstreamHTTP), issuer)
		if err != nil {
			err = fmt.Errorf("fetching the discovery document: %w", err)
		}
		p.mu.Lock()
		t := now()
		if err == nil {
			d.pr, d.staleAt, d.err = pr, t.Add(discoveryTTL), nil
		} else {
			d.err, d.retryAt = err, t.Add(discoveryRetryAfter)
		}
		d.inFlight = nil
		f.pr, f.err = pr, err
		p.mu.Unlock()
		close(f.done)
	}()
	return f
}

var upstreamHTTP = &http.Client{Timeout: upstreamTimeout}

func (h *Handler) oauthConfig(snap *snapshot.Snapshot, pr *oidc.Provider) *oauth2.Config {
	up := snap.Login.Upstream
	endpoint := pr.Endpoint()
	// One method, chosen from discovery: auto-detection would resend the secret another way
	// after any failure, doubling every failed call.
	endpoint.AuthStyle = authStyle(pr)
	return &oauth2.Config{
		ClientID: up.ClientID, ClientSecret: string(up.ClientSecret), Endpoint: endpoint,
		RedirectURL: snap.Issuer + CallbackPath, Scopes: up.Scopes,
	}
}

// authStyle is client_secret_post when the provider lists it, else client_secret_basic (the
// OpenID Connect default). Post first because some providers list basic but accept only post.
func authStyle(pr *oidc.Provider) oauth2.AuthStyle {
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if pr.Claims(&meta) == nil && slices.Contains(meta.Methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// upstreamOIDC logs the person in at the brand's own OpenID provider: Begin sends the browser
// there, the provider sends it back to CallbackPath (served by Handler.Callback).
type upstreamOIDC struct{ h *Handler }

// Begin sends the browser to the brand's identity provider.
func (c upstreamOIDC) Begin(w http.ResponseWriter, r *http.Request, f Flow) {
	h, snap, req := c.h, f.Snap, f.Req
	up := snap.Login.Upstream
	pr, err := h.providers.get(r.Context(), up.Issuer, h.Now)
	if err != nil {
		if r.Context().Err() != nil {
			return // the visitor left; the shared fetch goes on for the others
		}
		// The reason may quote the provider's whole answer: keep the log line bounded.
		h.Log.Info("Upstream identity provider unreachable", "issuer", up.Issuer, "reason", truncateReason(err.Error()))
		h.errorPage(w, http.StatusBadGateway, unavailable)
		return
	}
	st := upstreamState{Verifier: oauth2.GenerateVerifier()}
	if st.ID, err = randomToken(); err == nil {
		st.Nonce, err = randomToken()
	}
	if err != nil {
		h.Log.Error(err, "Upstream login failed: no state")
		h.errorPage(w, http.StatusInternalServerError, unavailable)
		return
	}
	expiry := h.Now().Add(upstreamTTL)
	cookie, err := snap.Codes.SealValue(purposeUpstream, st, expiry)
	if err != nil {
		h.Log.Error(err, "Upstream login failed: the cookie cannot be sealed")
		h.errorPage(w, http.StatusInternalServerError, unavailable)
		return
	}
	state, err := snap.Codes.SealValue(purposeUpstreamState, upstreamRequest{ID: st.ID, Req: req}, expiry)
	if err != nil {
		h.Log.Info("Authorization refused: the upstream state cannot be sealed", "clientID", req.ClientID, "reason", err.Error())
		h.errorPage(w, http.StatusBadRequest, linkNotValid)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: cookie, Path: h.Prefix + "/authorize", MaxAge: int(upstreamTTL.Seconds()),
		HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	redirect(w, h.oauthConfig(snap, pr).AuthCodeURL(state, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)))
}

// Callback serves GET /authorize/callback: the identity provider's answer.
func (h *Handler) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := h.Source.Snapshot()
		if snap == nil || snap.Login == nil || snap.Login.Upstream == nil {
			h.Log.Info("Upstream callback refused: spec.login is not upstreamOIDC")
			h.errorPage(w, http.StatusServiceUnavailable, unavailable)
			return
		}
		// The cookie is single use: clear it whatever happens next.
		http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: "", Path: h.Prefix + "/authorize", MaxAge: -1, HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
		var st upstreamState
		var ur upstreamRequest
		c, err := r.Cookie(upstreamCookie)
		q := r.URL.Query()
		if err != nil || snap.Codes.OpenValue(purposeUpstream, c.Value, h.Now(), &st) != nil ||
			snap.Codes.OpenValue(purposeUpstreamState, q.Get("state"), h.Now(), &ur) != nil || !equal(ur.ID, st.ID) {
			h.Log.Info("Upstream callback refused: missing, expired or mismatched state")
			h.errorPage(w, http.StatusForbidden, expired)
			return
		}
		client, aerr := authorize.Check(snap, ur.Req)
		if aerr != nil {
			h.refused(w, r, ur.Req, aerr)
			return
		}
		if e := q.Get("error"); e != "" {
			h.Log.Info("Upstream identity provider refused the login", "clientID", client.ID, "error", truncate(e))
			redirect(w, authorize.ErrorLocation(ur.Req, &authorize.Error{Code: "access_denied", Description: "the identity provider did not sign the person in"}))
			return
		}
		sub, claims, err := h.exchange(r.Context(), snap, q.Get("code"), st)
		if err != nil {
			h.Log.Info("Upstream login failed", "clientID", client.ID, "reason", truncateReason(err.Error()))
			redirect(w, authorize.ErrorLocation(ur.Req, &authorize.Error{Code: "server_error", Description: "the identity provider's answer could not be verified"}))
			return
		}
		h.complete(w, r, snap, client, ur.Req, identity(client, sub, claims))
	})
}

// exchange redeems the upstream code and verifies its id_token (signature, issuer, audience,
// expiry, nonce), returning the subject and the string claims.
func (h *Handler) exchange(ctx context.Context, snap *snapshot.Snapshot, code string, st upstreamState) (string, map[string]string, error) {
	up := snap.Login.Upstream
	pr, err := h.providers.get(ctx, up.Issuer, h.Now)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, upstreamHTTP), upstreamTimeout)
	defer cancel()
	tok, err := h.oauthConfig(snap, pr).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return "", nil, fmt.Errorf("exchanging the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", nil, fmt.Errorf("no id_token in the token response")
	}
	// Verifier, not VerifierContext: its key set is the provider's, cached across logins, where
	// VerifierContext would fetch the JWKS again for every login.
	idt, err := pr.Verifier(&oidc.Config{ClientID: up.ClientID, Now: h.Now}).Verify(ctx, raw)
	if err != nil {
		return "", nil, fmt.Errorf("verifying the id_token: %w", err)
	}
	if !equal(idt.Nonce, st.Nonce) {
		return "", nil, fmt.Errorf("the id_token's nonce does not match this login")
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return "", nil, err
	}
	sub, _ := all[up.SubjectClaim].(string)
	if sub == "" {
		return "", nil, fmt.Errorf("the id_token has no string claim %q for the subject", up.SubjectClaim)
	}
	claims := map[string]string{}
	for k, v := range all {
		if s, ok := v.(string); ok {
			claims[k] = s
		}
	}
	return sub, claims, nil
}

// truncateReason bounds an error from the provider's side in a log line.
func truncateReason(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
