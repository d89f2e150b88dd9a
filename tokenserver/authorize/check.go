package authorize

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Error is a refused authorization request. A Page error (unknown client, redirect_uri not
// registered) is shown to the person and never redirected: redirecting to an unchecked URL would
// make us an open redirector. Any other error is sent back to LivePerson's window.
type Error struct {
	Page        bool
	Code        string // RFC 6749 4.1.2.1 error code, for redirected errors
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func pageError(desc string) *Error {
	return &Error{Page: true, Code: "invalid_request", Description: desc}
}

func redirectError(code, desc string) *Error { return &Error{Code: code, Description: desc} }

// pkceChallenge is RFC 7636's code_challenge alphabet and length.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// Check judges a parsed request against the client it names. The client and redirect_uri are
// checked first: until both are known good, every error is a Page error.
func Check(snap *snapshot.Snapshot, req Request) (*snapshot.Client, *Error) {
	if req.ClientID == "" {
		return nil, pageError("client_id is missing")
	}
	client := snap.Clients[req.ClientID]
	if client == nil {
		return nil, pageError("client_id is not a client of this server")
	}
	if err := checkRedirectShape(req.RedirectURI); err != nil {
		return nil, pageError(err.Error())
	}
	if !client.Redirects.Allowed(req.RedirectURI) {
		return nil, pageError("redirect_uri is not registered for this client")
	}
	// From here on the redirect_uri is trusted: errors go back to LivePerson's window.
	switch req.ResponseType {
	case ResponseCode:
		if client.Flow != v1alpha1.FlowCode {
			return nil, redirectError("unauthorized_client", "this client uses the implicit flow: ask for response_type id_token")
		}
	case ResponseIDToken, ResponseToken:
		if client.Flow != v1alpha1.FlowImplicit {
			return nil, redirectError("unauthorized_client", "this client uses the code flow: ask for response_type code")
		}
	case "":
		return nil, redirectError("invalid_request", "response_type is missing")
	default:
		return nil, redirectError("unsupported_response_type", "response_type must be code, id_token or token")
	}
	if req.Scope != "" && !slices.Contains(strings.Fields(req.Scope), "openid") {
		return nil, redirectError("invalid_scope", "scope must include openid")
	}
	if req.ResponseType == ResponseCode {
		if err := checkPKCE(client, req); err != nil {
			return nil, err
		}
	}
	return client, nil
}

func checkPKCE(client *snapshot.Client, req Request) *Error {
	if req.CodeChallenge == "" {
		if req.CodeChallengeMethod != "" {
			return redirectError("invalid_request", "code_challenge_method without code_challenge")
		}
		if client.PKCE == v1alpha1.PKCERequired {
			return redirectError("invalid_request", "this client requires PKCE: send code_challenge")
		}
		return nil
	}
	if _, err := ChallengeMethod(client, req.CodeChallenge, req.CodeChallengeMethod); err != nil {
		return redirectError("invalid_request", err.Error())
	}
	return nil
}

// ChallengeMethod judges a PKCE challenge and method for client and returns the method the
// code will carry. No method means S256, not RFC 7636 4.3's plain: plain sends the verifier
// itself as the challenge, so it protects nothing once the request is seen (RFC 9700 2.1.1),
// and it is accepted only from a client that allows it (spec.allowPlainPKCE). The issue API
// judges its challenges here too, so both ways of getting a code follow one rule.
func ChallengeMethod(client *snapshot.Client, challenge, method string) (string, error) {
	switch {
	case method == "" || method == "S256":
		method = "S256"
	case method == "plain" && client.AllowPlainPKCE:
	case method == "plain":
		return "", errors.New("code_challenge_method plain is not allowed for this client: use S256")
	case client.AllowPlainPKCE:
		return "", errors.New("code_challenge_method must be S256 or plain")
	default:
		return "", errors.New("code_challenge_method must be S256")
	}
	if !pkceChallenge.MatchString(challenge) {
		return "", errors.New("code_challenge must be 43 to 128 characters of [A-Za-z0-9._~-]")
	}
	return method, nil
}

// ErrorLocation is where a redirected error sends the browser: redirect_uri with error,
// error_description and the state as received.
func ErrorLocation(req Request, e *Error) string {
	q := "error=" + url.QueryEscape(e.Code) + "&error_description=" + url.QueryEscape(e.Description)
	return appendQuery(req.RedirectURI, q, req)
}

// Complete issues what the request asked for to the person a connector logged in, and returns
// where to send the browser: a code (code flow) or a signed, and when configured encrypted,
// token (implicit) on LivePerson's redirect_uri, with the state echoed.
func Complete(snap *snapshot.Snapshot, client *snapshot.Client, req Request, id idtoken.Identity, now time.Time) (string, error) {
	if err := id.Validate(); err != nil {
		return "", err
	}
	if req.ResponseType != ResponseCode {
		token, _, err := idtoken.Mint(snap, client, id, now)
		if err != nil {
			return "", err
		}
		return appendQuery(req.RedirectURI, "token="+url.QueryEscape(token), req), nil
	}
	p := codes.Payload{ClientID: client.ID, Subject: id.Subject, Issued: now.Unix(), Expiry: now.Add(snap.CodeTTL).Unix(), RedirectURI: req.RedirectURI}
	if req.CodeChallenge != "" && client.PKCE != v1alpha1.PKCEDisabled {
		// Check judged the request already; the client may have changed since (a login form
		// is posted minutes later), so the method is judged again.
		method, err := ChallengeMethod(client, req.CodeChallenge, req.CodeChallengeMethod)
		if err != nil {
			return "", err
		}
		p.CodeChallenge, p.CodeChallengeMethod = req.CodeChallenge, method
	}
	if err := encodeIdentity(&p, id); err != nil {
		return "", err
	}
	var err error
	if p.ID, err = codes.NewID(); err != nil {
		return "", err
	}
	code, err := snap.Codes.Seal(p)
	if err != nil {
		return "", err
	}
	return appendQuery(req.RedirectURI, "code="+url.QueryEscape(code), req), nil
}

// appendQuery adds params (already escaped) and the raw state to redirect_uri, keeping the
// query it already has: LivePerson's legacy mode carries its window configuration there.
func appendQuery(redirectURI, params string, req Request) string {
	if req.HasState {
		params += "&state=" + req.RawState
	}
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
		if strings.HasSuffix(redirectURI, "?") || strings.HasSuffix(redirectURI, "&") {
			sep = ""
		}
	}
	return redirectURI + sep + params
}

// encodeIdentity puts the person's claims and lp_sdes into the code, which carries them to the
// token endpoint (any replica can redeem it: nothing is kept server-side).
func encodeIdentity(p *codes.Payload, id idtoken.Identity) error {
	var err error
	if len(id.Claims) > 0 {
		if p.Claims, err = json.Marshal(id.Claims); err != nil {
			return err
		}
	}
	if len(id.SDEs) > 0 {
		if p.LPSdes, err = idtoken.CodeSDEs(id.SDEs); err != nil {
			return err
		}
		p.SDEsWritten = true
	}
	return nil
}
