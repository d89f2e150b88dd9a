// Package token serves POST /token: LivePerson redeems a code for an id_token, authenticating
// with the client's id and secret.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/clientaddr"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// MaxFormBytes bounds a token request body. A code is at most codes.MaxCodeLength; the rest of
// the form is small.
var MaxFormBytes = int64(codes.MaxCodeLength + 8<<10)

// Route is /token's route.
func (h *Handler) Route() oauth.Route {
	return oauth.Route{Name: "token", Path: endpoints.TokenPath, Handler: h}
}

// Handler serves POST /token, the authorization_code grant.
type Handler struct {
	Source  oauth.Source
	Replay  replay.Store
	Now     func() time.Time
	Log     logr.Logger
	Observe oauth.Observer
	// Limiter counts failed client authentications per client id and client address (nil:
	// none). It never refuses a correct secret.
	Limiter *limiter.FailureLimiter
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := oauth.Result{Endpoint: oauth.Endpoint(r)}
	body, err := h.serve(w, r, &res)
	if err != nil {
		res.Err = err
		h.Log.Info("Token request refused", "error", err.Code, "reason", err.Reason, "clientID", res.ClientID)
		oauth.WriteError(w, err)
	} else {
		oauth.WriteJSONBytes(w, http.StatusOK, body.appendJSON(make([]byte, 0, 128+len(body.IDToken))))
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

// appendJSON writes the response as json.Encoder does (TestTokenResponseIsJSONEncoders), without
// its reflection: every value but expires_in is base64url and dots, which JSON takes unescaped.
// A value with any other byte (there is none today) goes through encoding/json.
func (t *tokenResponse) appendJSON(b []byte) []byte {
	if !jsonSafe(t.AccessToken) || !jsonSafe(t.TokenType) || !jsonSafe(t.IDToken) {
		v, _ := json.Marshal(t) // strings and an integer: it cannot fail
		return append(append(b, v...), '\n')
	}
	b = append(b, `{"access_token":"`...)
	b = append(b, t.AccessToken...)
	b = append(b, `","token_type":"`...)
	b = append(b, t.TokenType...)
	b = append(b, `","expires_in":`...)
	b = strconv.AppendInt(b, t.ExpiresIn, 10)
	b = append(b, `,"id_token":"`...)
	b = append(b, t.IDToken...)
	return append(b, "\"}\n"...)
}

// jsonSafe is whether s is made of the characters a compact JWS or JWE and base64url are made
// of, all of which json.Marshal writes as they are. A table: an id_token is a kilobyte or more,
// and a switch per byte showed in the server's profile.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	return t
}()

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, res *oauth.Result) (*tokenResponse, *oauth.Error) {
	snap := h.Source.Snapshot()
	if snap == nil {
		return nil, oauth.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "no snapshot yet", "the server is starting")
	}
	if r.Method != http.MethodPost {
		return nil, oauth.Errorf(http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method, "use POST")
	}
	form, err := parseForm(w, r)
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
			return nil, oauth.InvalidRequest("no grant_type", "grant_type is required")
		}
		return nil, oauth.Errorf(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+truncate(gt), "only authorization_code is supported")
	}
	raw := form.Get("code")
	if raw == "" {
		return nil, oauth.InvalidRequest("no code", "code is required")
	}
	now := h.Now()
	code, openErr := snap.Codes.Open(raw, now)
	if openErr != nil {
		return nil, oauth.InvalidGrant(openErr.Error(), "the code is invalid or expired")
	}
	if err := checkCode(code, client, form); err != nil {
		return nil, err
	}
	// Claimed last, once everything else holds, so a mistaken request does not burn a good code.
	issued := time.Unix(code.Issued, 0)
	if code.Issued == 0 {
		issued = time.Unix(code.Expiry, 0).Add(-snap.CodeTTL) // a code from before iat was recorded
	}
	fresh, claimErr := h.Replay.Claim(r.Context(), code.ID, issued, time.Unix(code.Expiry, 0))
	if errors.Is(claimErr, replay.ErrBeforeRecords) {
		return nil, oauth.InvalidGrant("code issued before the replay store's records begin", "the code was issued before the token server's replay store restarted: sign in again")
	}
	if claimErr != nil {
		return nil, oauth.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "replay store: "+claimErr.Error(), "try again")
	}
	if !fresh {
		return nil, oauth.InvalidGrant("code already redeemed", "the code was already used")
	}
	id, err := identityFromCode(code, client)
	if err != nil {
		return nil, err
	}
	token, exp, mintErr := idtoken.Mint(snap, client, id, now)
	if mintErr != nil {
		return nil, oauth.Errorf(http.StatusInternalServerError, "server_error", "minting: "+mintErr.Error(), "")
	}
	access, _ := randomString(32)
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(exp.Sub(now).Seconds()), IDToken: token}, nil
}

// parseForm reads a bounded urlencoded body and refuses repeated parameters (RFC 6749 3.2),
// and a URL query that is malformed or carries the code or the secret (RFC 6749 2.3.1). It does
// what Request.ParseForm did here, without building r.Form (the body merged with the query),
// which nothing here reads.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	if ct := r.Header.Get("Content-Type"); ct != formType { // the usual spelling needs no parsing
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != formType {
			return nil, oauth.InvalidRequest("content type "+truncate(ct), "the body must be application/x-www-form-urlencoded")
		}
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, oauth.Errorf(http.StatusRequestEntityTooLarge, "invalid_request", "body over the limit", "the request body is too large")
		}
		return nil, oauth.InvalidRequest("reading the body: "+err.Error(), "the body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauth.InvalidRequest("malformed form: "+err.Error(), "the body is not a valid form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, oauth.InvalidRequest("repeated parameter "+truncate(k), "parameter "+truncate(k)+" is repeated")
		}
	}
	if r.URL.RawQuery != "" {
		// Parsed strictly: URL.Query drops what it cannot parse, and "code=x;" would hide a code.
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, oauth.InvalidRequest("malformed query: "+err.Error(), "the URL's query is not valid")
		}
		if q.Has("client_secret") || q.Has("code") {
			return nil, oauth.InvalidRequest("credentials in the query", "send the code and credentials in the body, not the URL")
		}
	}
	r.PostForm = form
	return form, nil
}

const formType = "application/x-www-form-urlencoded"

// usualFormBytes is more than LivePerson's token requests take (a code is about 1 KB).
const usualFormBytes = 4 << 10

// readBody reads r's body, at most MaxFormBytes of it (an *http.MaxBytesError past that, and
// net/http closes the connection after the response), into one buffer sized by Content-Length
// when it gives one, up to the size of a usual request: a larger length grows the buffer only as
// the bytes arrive, so a length the client never sends holds no memory.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body := http.MaxBytesReader(w, r.Body, MaxFormBytes)
	r.Body = body
	size := int64(512)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, usualFormBytes) + 1 // +1: room to read the EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// authenticate accepts client_secret_basic or client_secret_post, never both. It returns the
// client it names (for logging) even when authentication fails.
//
// The secret is compared before the failure limiter is asked, so a correct secret is never
// refused. Were the limiter asked first, anyone who saw the client id (it is not a secret: it
// travels in LivePerson's authorize URLs) could keep LivePerson at 429 with one bad request now
// and then. Comparing first gives a guesser nothing: generated secrets are 256-bit, and the
// operator refuses brand-chosen ones under 32 characters or an estimated 128 bits, so no rate
// of online guessing finds one. The limiter, per client id and client address, tells a guesser
// 429 and makes the abuse show in logs and metrics; the secret's entropy is what protects it.
func (h *Handler) authenticate(r *http.Request, form url.Values, snap *snapshot.Snapshot) (*snapshot.Client, *oauth.Error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if r.Header.Get("Authorization") != "" && !hasBasic {
		return nil, oauth.InvalidClient("an Authorization header that is not Basic")
	}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	// Each credential in its two possible spellings: as sent, then form-decoded.
	var ids, secrets [2]string
	switch {
	case hasBasic && postSecret != "":
		return nil, oauth.InvalidRequest("both client_secret_basic and client_secret_post", "use one client authentication method")
	case hasBasic:
		// RFC 6749 2.3.1 form-encodes id and secret before base64; LivePerson's docs show them
		// sent as they are. Generated values read the same both ways, but a brand-chosen secret
		// with '+', '%' or '/' does not, and we cannot tell which spelling a client used.
		ids = [2]string{basicID, formDecode(basicID)}
		secrets = [2]string{basicSecret, formDecode(basicSecret)}
		if postID != "" && postID != ids[0] && postID != ids[1] {
			return nil, oauth.InvalidRequest("client_id differs from the Basic credentials", "client_id does not match the Authorization header")
		}
	case postID != "":
		// The body was form-decoded by url.ParseQuery: there is one spelling.
		ids, secrets = [2]string{postID, postID}, [2]string{postSecret, postSecret}
	default:
		return nil, oauth.InvalidClient("no client credentials")
	}
	client := snap.Clients[ids[0]]
	if client == nil {
		client = snap.Clients[ids[1]]
	}
	if client == nil {
		return nil, oauth.InvalidClient("unknown client id " + truncate(ids[0]))
	}
	if client.Flow == v1alpha1.FlowCode && secretMatches(client, secrets) {
		return client, nil
	}
	if h.Limiter != nil {
		// Counted per address too, so one address's failures never slow another's.
		key := limiter.KeyOf("token", client.ID, limiter.Network(clientaddr.Of(r, snap.TrustedProxies)))
		if ok, wait := h.Limiter.Allow(key, h.Limiter.Rule); !ok {
			e := oauth.Errorf(http.StatusTooManyRequests, "invalid_client", "wrong client secret; too many failed authentications from this address",
				"client authentication failed; too many failed attempts, retry later")
			e.RetryAfter = wait
			return client, e
		}
		h.Limiter.Fail(key, h.Limiter.Rule)
	}
	return client, oauth.InvalidClient("wrong client secret")
}

func formDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// secretMatches compares every spelling with the client's digest in constant time, always all
// of them, so the time tells neither whether nor which one matched; comparing digests makes it
// independent of the length too.
func secretMatches(client *snapshot.Client, spellings [2]string) bool {
	match := 0
	for _, s := range spellings {
		sum := sha256.Sum256([]byte(s))
		match |= subtle.ConstantTimeCompare(sum[:], client.SecretHash[:])
	}
	return client.HasSecret && match == 1
}

// checkCode ties the code to this client, redirect_uri and PKCE verifier.
func checkCode(code codes.Payload, client *snapshot.Client, form url.Values) *oauth.Error {
	if code.ClientID != client.ID {
		return oauth.InvalidGrant("code issued to another client", "the code was issued to another client")
	}
	ru := form.Get("redirect_uri")
	switch {
	case code.RedirectURI != "" && ru != code.RedirectURI:
		return oauth.InvalidGrant("redirect_uri differs from the authorization request", "redirect_uri does not match")
	case ru != "" && !client.Redirects.Allowed(ru):
		return oauth.InvalidGrant("redirect_uri not allowed: "+truncate(ru), "redirect_uri is not registered for this client")
	}
	verifier := form.Get("code_verifier")
	if client.PKCE == v1alpha1.PKCEDisabled && code.CodeChallenge == "" {
		// The client asked for no PKCE: /authorize ignored any challenge, so a verifier is
		// ignored too, or LivePerson with PKCE turned on in its console would fail every login.
		// There is no PKCE to downgrade here; Allowed (the default) and Required are protected.
		verifier = ""
	}
	switch {
	case code.CodeChallenge == "" && verifier != "":
		// RFC 9700 4.8.2: a verifier for a code issued without a challenge means the code was
		// not the one this client's flow asked for (an injected code). Ignoring the verifier
		// would let an attacker downgrade PKCE away.
		return oauth.InvalidGrant("code_verifier sent for a code issued without a code_challenge", "the code was issued without a code_challenge")
	case code.CodeChallenge == "" && client.PKCE == v1alpha1.PKCERequired:
		return oauth.InvalidGrant("PKCE required but the code has no challenge", "this client requires PKCE")
	case code.CodeChallenge == "":
		return nil
	case verifier == "":
		return oauth.InvalidGrant("no code_verifier for a PKCE code", "code_verifier is required")
	case code.CodeChallengeMethod == "plain" && !client.AllowPlainPKCE:
		// Codes are sealed, so only a code issued before allowPlainPKCE was turned off gets here.
		return oauth.InvalidGrant("plain PKCE is not allowed for this client", "code_challenge_method plain is not allowed")
	case !oauth.VerifyPKCE(code.CodeChallenge, code.CodeChallengeMethod, verifier):
		return oauth.InvalidGrant("code_verifier does not match", "code_verifier does not match the code challenge")
	}
	return nil
}

func identityFromCode(code codes.Payload, client *snapshot.Client) (idtoken.Identity, *oauth.Error) {
	id := idtoken.Identity{Subject: code.Subject}
	if len(code.Claims) > 0 {
		if err := json.Unmarshal(code.Claims, &id.Claims); err != nil {
			return id, oauth.Errorf(http.StatusInternalServerError, "server_error", "code claims: "+err.Error(), "")
		}
	}
	if code.SDEsWritten && len(client.SDEs) == 0 {
		// Validated and written by this server when it sealed the code: the token carries them
		// as they are (BenchmarkTokenHandlerUnsigned: decoding and validating them again was
		// the largest cost of a redemption after the signature).
		id.SDEsJSON = code.LPSdes
	} else if len(code.LPSdes) > 0 {
		sdes, err := lpsdes.Parse(code.LPSdes)
		if err != nil {
			return id, oauth.Errorf(http.StatusInternalServerError, "server_error", "code lp_sdes: "+err.Error(), "")
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
