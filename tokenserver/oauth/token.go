package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// MaxFormBytes bounds a token request body. A code is at most codes.MaxCodeLength; the rest of
// the form is small.
var MaxFormBytes = int64(codes.MaxCodeLength + 8<<10)

// Source gives the current snapshot, or nil before the first one is built.
type Source interface {
	Snapshot() *snapshot.Snapshot
}

// Result is what happened to a request, for metrics and logs (never a secret, code or token).
type Result struct {
	Endpoint string
	ClientID string
	Flow     string
	Err      *Error
}

// Observer is told the result of every request it should count.
type Observer func(r *http.Request, res Result)

// TokenHandler serves POST /token, the authorization_code grant.
type TokenHandler struct {
	Source  Source
	Replay  replay.Store
	Now     func() time.Time
	Log     logr.Logger
	Observe Observer
	// Limiter slows repeated failed client authentications per client id (nil: none).
	Limiter *FailureLimiter
}

func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := Result{Endpoint: "token"}
	body, err := h.serve(r, &res)
	if err != nil {
		res.Err = err
		h.Log.Info("Token request refused", "error", err.Code, "reason", err.Reason, "clientID", res.ClientID)
		WriteError(w, err)
	} else {
		WriteJSON(w, http.StatusOK, body)
	}
	if h.Observe != nil {
		h.Observe(r, res)
	}
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
}

func (h *TokenHandler) serve(r *http.Request, res *Result) (*tokenResponse, *Error) {
	snap := h.Source.Snapshot()
	if snap == nil {
		return nil, errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "no snapshot yet", "the server is starting")
	}
	if r.Method != http.MethodPost {
		return nil, errorf(http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method, "use POST")
	}
	form, err := parseForm(r)
	if err != nil {
		return nil, err
	}
	client, err := h.authenticate(r, form, snap)
	if client != nil {
		res.ClientID, res.Flow = client.ID, string(client.Flow)
	}
	if err != nil {
		return nil, err
	}
	if gt := form.Get("grant_type"); gt != "authorization_code" {
		if gt == "" {
			return nil, invalidRequest("no grant_type", "grant_type is required")
		}
		return nil, errorf(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+truncate(gt), "only authorization_code is supported")
	}
	raw := form.Get("code")
	if raw == "" {
		return nil, invalidRequest("no code", "code is required")
	}
	now := h.Now()
	code, openErr := snap.Codes.Open(raw, now)
	if openErr != nil {
		return nil, invalidGrant(openErr.Error(), "the code is invalid or expired")
	}
	if err := checkCode(code, client, form); err != nil {
		return nil, err
	}
	// Claimed last, once everything else holds, so a mistaken request does not burn a good code.
	fresh, claimErr := h.Replay.Claim(r.Context(), code.ID, time.Unix(code.Expiry, 0))
	if claimErr != nil {
		return nil, errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "replay store: "+claimErr.Error(), "try again")
	}
	if !fresh {
		return nil, invalidGrant("code already redeemed", "the code was already used")
	}
	id, err := identityFromCode(code)
	if err != nil {
		return nil, err
	}
	token, exp, mintErr := idtoken.Mint(snap, client, id, now)
	if mintErr != nil {
		return nil, errorf(http.StatusInternalServerError, "server_error", "minting: "+mintErr.Error(), "")
	}
	access, _ := randomString(32)
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(exp.Sub(now).Seconds()), IDToken: token}, nil
}

// parseForm reads a bounded urlencoded body and refuses repeated parameters (RFC 6749 3.2).
func parseForm(r *http.Request) (url.Values, *Error) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("content type "+truncate(r.Header.Get("Content-Type")), "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "invalid_request", "body over the limit", "the request body is too large")
		}
		return nil, invalidRequest("malformed form: "+err.Error(), "the body is not a valid form")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest("repeated parameter "+truncate(k), "parameter "+truncate(k)+" is repeated")
		}
	}
	if len(r.URL.RawQuery) > 0 && (r.URL.Query().Has("client_secret") || r.URL.Query().Has("code")) {
		return nil, invalidRequest("credentials in the query", "send the code and credentials in the body, not the URL")
	}
	return r.PostForm, nil
}

// authenticate accepts client_secret_basic or client_secret_post, never both. It returns the
// client it names (for logging) even when authentication fails.
func (h *TokenHandler) authenticate(r *http.Request, form url.Values, snap *snapshot.Snapshot) (*snapshot.Client, *Error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if r.Header.Get("Authorization") != "" && !hasBasic {
		return nil, invalidClient("an Authorization header that is not Basic")
	}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	var id, secret string
	switch {
	case hasBasic && postSecret != "":
		return nil, invalidRequest("both client_secret_basic and client_secret_post", "use one client authentication method")
	case hasBasic:
		// RFC 6749 2.3.1 form-encodes id and secret in the header; ours are URL-safe, so decoding
		// only matters for a secret the brand chose.
		id, secret = formDecode(basicID), formDecode(basicSecret)
		if postID != "" && postID != id {
			return nil, invalidRequest("client_id differs from the Basic credentials", "client_id does not match the Authorization header")
		}
	case postID != "":
		id, secret = postID, postSecret
	default:
		return nil, invalidClient("no client credentials")
	}
	client := snap.Clients[id]
	if client == nil {
		return nil, invalidClient("unknown client id " + truncate(id))
	}
	if h.Limiter != nil && !h.Limiter.Allow(id) {
		return client, errorf(http.StatusTooManyRequests, "invalid_client", "too many failed authentications", "too many failed attempts; wait a minute")
	}
	if client.Flow != v1alpha1.FlowCode || !equalSecrets(secret, client) {
		if h.Limiter != nil {
			h.Limiter.Fail(id)
		}
		return client, invalidClient("wrong client secret")
	}
	return client, nil
}

func formDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// equalSecrets compares in constant time; hashing first makes the time independent of length too.
func equalSecrets(got string, client *snapshot.Client) bool {
	if !client.HasSecret {
		return false
	}
	a := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], client.SecretHash[:]) == 1
}

// checkCode ties the code to this client, redirect_uri and PKCE verifier.
func checkCode(code codes.Payload, client *snapshot.Client, form url.Values) *Error {
	if code.ClientID != client.ID {
		return invalidGrant("code issued to another client", "the code was issued to another client")
	}
	ru := form.Get("redirect_uri")
	switch {
	case code.RedirectURI != "" && ru != code.RedirectURI:
		return invalidGrant("redirect_uri differs from the authorization request", "redirect_uri does not match")
	case ru != "" && !client.Redirects.Allowed(ru):
		return invalidGrant("redirect_uri not allowed: "+truncate(ru), "redirect_uri is not registered for this client")
	}
	verifier := form.Get("code_verifier")
	switch {
	case code.CodeChallenge != "":
		if verifier == "" {
			return invalidGrant("no code_verifier for a PKCE code", "code_verifier is required")
		}
		if !verifyPKCE(code.CodeChallenge, code.CodeChallengeMethod, verifier) {
			return invalidGrant("code_verifier does not match", "code_verifier does not match the code challenge")
		}
	case client.PKCE == v1alpha1.PKCERequired:
		return invalidGrant("PKCE required but the code has no challenge", "this client requires PKCE")
	}
	return nil
}

// verifyPKCE checks a verifier against its challenge (RFC 7636).
func verifyPKCE(challenge, method, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	computed := verifier
	if method != "plain" {
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

func identityFromCode(code codes.Payload) (idtoken.Identity, *Error) {
	id := idtoken.Identity{Subject: code.Subject}
	if len(code.Claims) > 0 {
		if err := json.Unmarshal(code.Claims, &id.Claims); err != nil {
			return id, errorf(http.StatusInternalServerError, "server_error", "code claims: "+err.Error(), "")
		}
	}
	if len(code.LPSdes) > 0 {
		sdes, err := lpsdes.Parse(code.LPSdes)
		if err != nil {
			return id, errorf(http.StatusInternalServerError, "server_error", "code lp_sdes: "+err.Error(), "")
		}
		id.SDEs = sdes
	}
	return id, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// truncate keeps untrusted values short in logs and messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
