// Package issueapi is the API the brand's backend calls for users it has already authenticated,
// all of {issuer}/api/v1: POST /codes returns an authorization code (the SDK code flow: the app
// hands the code to LivePerson's SDK, LivePerson redeems it at /token), POST /tokens returns a
// signed, optionally encrypted JWT (the implicit flow), and POST /authorizations completes a
// landing-page login request of the pop-out window. All take a bearer credential from the
// TokenServer's credentials Secret.
package issueapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 32 << 10

// Request is the body of both calls.
type Request struct {
	// ClientID is the LivePersonAuthClient's client id.
	ClientID string `json:"client_id"`
	// Subject is the brand's stable, non-guessable user id: LivePerson's customer id.
	Subject string `json:"sub"`
	// Claims are profile claims (given_name, family_name, email, ...), string values.
	Claims map[string]string `json:"claims,omitempty"`
	// LPSdes is the lp_sdes array for this user, merged over the client's template.
	LPSdes json.RawMessage `json:"lp_sdes,omitempty"`
	// RedirectURI (codes only) binds the code to the redirect_uri the SDK will present.
	RedirectURI string `json:"redirect_uri,omitempty"`
	// CodeChallenge and CodeChallengeMethod (codes only) bind the code to a PKCE verifier.
	CodeChallenge       string `json:"code_challenge,omitempty"`
	CodeChallengeMethod string `json:"code_challenge_method,omitempty"`
}

// Handler serves both endpoints.
type Handler struct {
	Source oauth.Source
	// Replay makes each landing-page login request complete once (/authorizations); without
	// one, /authorizations answers 503.
	Replay  replay.Store
	Now     func() time.Time
	Log     logr.Logger
	Observe oauth.Observer
}

// Routes are the issue API's endpoints: all of /api/v1.
func (h *Handler) Routes() []oauth.Route {
	return []oauth.Route{
		{Name: "issue_codes", Path: endpoints.IssueAPIPath + "/codes", Handler: h.Codes()},
		{Name: "issue_tokens", Path: endpoints.IssueAPIPath + "/tokens", Handler: h.Tokens()},
		{Name: "authorizations", Path: AuthorizationsPath, Handler: h.Authorizations()},
	}
}

// AuthorizationsPath is where the brand's backend completes a landing-page login request.
const AuthorizationsPath = endpoints.IssueAPIPath + "/authorizations"

// Codes serves POST /api/v1/codes.
func (h *Handler) Codes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "codes") })
}

// Tokens serves POST /api/v1/tokens.
func (h *Handler) Tokens() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "tokens") })
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, what string) {
	res := oauth.Result{Endpoint: oauth.Endpoint(r)}
	body, err := h.handle(r, what, &res)
	Respond(w, r, h.Log, h.Observe, res, body, err)
}

// Respond answers an issue-API call: the JSON body, or the error (logged without secrets); then
// the result is counted.
func Respond(w http.ResponseWriter, r *http.Request, log logr.Logger, observe oauth.Observer, res oauth.Result, body any, err *oauth.Error) {
	if err != nil {
		res.Err = err
		log.Info("Issue API request refused", "endpoint", res.Endpoint, "error", err.Code, "reason", err.Reason, "clientID", res.ClientID)
		oauth.WriteError(w, err)
	} else {
		oauth.WriteJSON(w, http.StatusOK, body)
	}
	if observe != nil {
		observe(r, res)
	}
}

// Bad is an invalid_request whose reason is safe to show the caller.
func Bad(reason string) *oauth.Error {
	return &oauth.Error{Status: http.StatusBadRequest, Code: "invalid_request", Reason: reason, Description: reason}
}

// Check refuses a call before its body is read: no snapshot yet, not a POST, or a missing or
// wrong bearer credential (a retired one is told it was replaced).
func Check(r *http.Request, snap *snapshot.Snapshot) *oauth.Error {
	switch {
	case snap == nil:
		return &oauth.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Reason: "no snapshot yet"}
	case r.Method != http.MethodPost:
		return &oauth.Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Reason: "method " + r.Method, Description: "use POST"}
	case Authorized(r, snap.IssueAPITokens):
		return nil
	case Retired(r, snap.RetiredIssueAPITokenDigests):
		// The backend kept a credential past its overlap: say so, or its operators hunt for a
		// typo in a value that was right yesterday.
		return &oauth.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Reason: "retired bearer credential",
			Description: "this issue-API credential was replaced and is no longer accepted; use the current one from Secret " + snap.CredentialsSecret,
			Challenge:   bearerChallenge + `, error="invalid_token", error_description="credential replaced"`}
	case !hasBearer(r):
		// RFC 6750 section 3.1: a request without bearer credentials (none, or another scheme)
		// gets the challenge without an error code.
		return &oauth.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Reason: "no bearer credential",
			Description: "send Authorization: Bearer <issue API credential>", Challenge: bearerChallenge}
	default:
		return &oauth.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Reason: "missing or wrong bearer credential",
			Description: "send Authorization: Bearer <issue API credential>", Challenge: bearerChallenge + `, error="invalid_token"`}
	}
}

// bearerChallenge is the issue API's WWW-Authenticate challenge (RFC 6750): the brand's backend
// authenticates with a bearer credential, not with /token's HTTP Basic client credentials.
const bearerChallenge = `Bearer realm="issue-api"`

func (h *Handler) handle(r *http.Request, what string, res *oauth.Result) (map[string]any, *oauth.Error) {
	snap := h.Source.Snapshot()
	if err := Check(r, snap); err != nil {
		return nil, err
	}
	var req Request
	if err := DecodeJSON(r, MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	if req.ClientID == "" {
		return nil, Bad("client_id is required")
	}
	client := snap.Clients[req.ClientID]
	if client == nil {
		return nil, Bad("unknown client_id")
	}
	res.ClientID, res.Flow = client.ID, string(client.Flow)
	sdes, perr := lpsdes.Parse(req.LPSdes)
	if perr != nil {
		return nil, Bad(perr.Error())
	}
	id := idtoken.Identity{Subject: req.Subject, Claims: req.Claims, SDEs: sdes}
	if verr := id.Validate(); verr != nil {
		return nil, Bad(verr.Error())
	}
	now := h.Now()
	if what == "tokens" {
		token, exp, err := idtoken.Mint(snap, client, id, now)
		if err != nil {
			return nil, &oauth.Error{Status: http.StatusInternalServerError, Code: "server_error", Reason: "minting: " + err.Error()}
		}
		return map[string]any{"token": token, "expires_in": int64(exp.Sub(now).Seconds())}, nil
	}
	return issueCode(snap, client, req, sdes, now)
}

func issueCode(snap *snapshot.Snapshot, client *snapshot.Client, req Request, sdes []lpsdes.SDE, now time.Time) (map[string]any, *oauth.Error) {
	if client.Flow != v1alpha1.FlowCode {
		return nil, Bad("client " + client.ID + " uses the implicit flow: call /api/v1/tokens")
	}
	if req.RedirectURI != "" && !client.Redirects.Allowed(req.RedirectURI) {
		return nil, Bad("redirect_uri is not registered for this client")
	}
	p := codes.Payload{ClientID: client.ID, Subject: req.Subject, Issued: now.Unix(), Expiry: now.Add(snap.CodeTTL).Unix(), RedirectURI: req.RedirectURI}
	if client.PKCE != v1alpha1.PKCEDisabled && req.CodeChallenge != "" {
		// The authorization endpoint's rule: S256 when no method is given, plain only where
		// the client allows it.
		method, err := authorize.ChallengeMethod(client, req.CodeChallenge, req.CodeChallengeMethod)
		if err != nil {
			return nil, Bad(err.Error())
		}
		p.CodeChallenge, p.CodeChallengeMethod = req.CodeChallenge, method
	}
	if client.PKCE == v1alpha1.PKCERequired && p.CodeChallenge == "" {
		return nil, Bad("this client requires PKCE: send code_challenge")
	}
	if len(req.Claims) > 0 {
		p.Claims, _ = json.Marshal(req.Claims)
	}
	if len(sdes) > 0 {
		var err error
		if p.LPSdes, err = idtoken.CodeSDEs(sdes); err != nil {
			return nil, Bad(err.Error())
		}
		p.SDEsWritten = true
	}
	var err error
	if p.ID, err = codes.NewID(); err != nil {
		return nil, &oauth.Error{Status: http.StatusInternalServerError, Code: "server_error", Reason: err.Error()}
	}
	code, err := snap.Codes.Seal(p)
	if err != nil {
		return nil, Bad(err.Error())
	}
	return map[string]any{"code": code, "expires_in": int64(snap.CodeTTL.Seconds())}, nil
}

// Authorized compares the bearer credential with each valid one in constant time.
func Authorized(r *http.Request, tokens [][]byte) bool {
	g, ok := bearerDigest(r)
	if !ok {
		return false
	}
	match := 0
	for _, t := range tokens {
		w := sha256.Sum256(t)
		match |= subtle.ConstantTimeCompare(g[:], w[:])
	}
	return match == 1
}

// Retired reports whether the bearer credential is one of the retired ones, given as SHA-256
// digests; every entry is compared, each in constant time.
func Retired(r *http.Request, digests [][sha256.Size]byte) bool {
	g, ok := bearerDigest(r)
	if !ok {
		return false
	}
	match := 0
	for _, d := range digests {
		match |= subtle.ConstantTimeCompare(g[:], d[:])
	}
	return match == 1
}

// bearerDigest is the SHA-256 digest of the bearer credential: digests of equal length are
// what the comparisons see, so their time says nothing about the credential's length.
func bearerDigest(r *http.Request) ([sha256.Size]byte, bool) {
	given, ok := bearer(r)
	if !ok {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(given)), true
}

// hasBearer reports whether the request carries a bearer credential, right or wrong.
func hasBearer(r *http.Request) bool {
	_, ok := bearer(r)
	return ok
}

// bearer is the credential of an "Authorization: Bearer" header; the scheme name is
// case-insensitive (RFC 7235 section 2.1).
func bearer(r *http.Request) (string, bool) {
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || given == "" {
		return "", false
	}
	return given, true
}

// DecodeJSON reads an application/json body of at most max bytes into v, strictly: unknown
// fields and trailing values are refused.
func DecodeJSON(r *http.Request, max int, v any) *oauth.Error {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return Bad("the body must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return Bad("reading the body: " + err.Error())
	}
	if len(body) > max {
		return &oauth.Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Reason: "body over the limit",
			Description: fmt.Sprintf("the body must be at most %d bytes", max)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Bad("the body is not a valid request: " + err.Error())
	}
	if dec.More() {
		return Bad("the body holds more than one JSON value")
	}
	return nil
}
