// Package authorize is the pop-out window's authorization endpoint (api/LIVEPERSON.md "The pop-out
// window"): it parses and checks LivePerson's request, and once a login connector knows who the
// person is, builds the redirect back to LivePerson's window with a code or a token and the state
// echoed byte for byte. Errors that would make the redirect itself unsafe (unknown client, a
// redirect_uri not registered) are shown as a page and never redirected.
package authorize

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxQueryBytes bounds the query of an authorization request. LivePerson packs its window's
// configuration into state (several KB, URL-encoded); 32 KB leaves room for twice the 16 KB the
// contract asks for.
const MaxQueryBytes = 32 << 10

// Response types LivePerson sends: code (code flow), id_token (implicit, "OAuth 2 RFC" mode) and
// token (implicit, legacy "openID" mode).
const (
	ResponseCode    = "code"
	ResponseIDToken = "id_token"
	ResponseToken   = "token"
)

// Request is one authorization request.
type Request struct {
	ClientID     string `json:"cid"`
	ResponseType string `json:"rt"`
	RedirectURI  string `json:"ru"`
	Scope        string `json:"sc,omitempty"`
	// RawState is state exactly as it appeared in the query, still percent-encoded, so the
	// redirect carries the same bytes LivePerson sent. HasState tells an empty state from none.
	RawState            string `json:"st,omitempty"`
	HasState            bool   `json:"hs,omitempty"`
	CodeChallenge       string `json:"cc,omitempty"`
	CodeChallengeMethod string `json:"ccm,omitempty"`
}

// the parameters that may appear at most once (RFC 6749 3.1); others (parentWindowOrigin, ...)
// are ignored.
var single = map[string]bool{
	"client_id": true, "response_type": true, "redirect_uri": true, "scope": true, "state": true,
	"code_challenge": true, "code_challenge_method": true,
}

// Parse reads an authorization request from a raw query string. It fails on an oversize query,
// malformed escapes, repeated parameters and values that are not UTF-8; it does not judge the
// values (Check does, against the client).
func Parse(rawQuery string) (Request, error) {
	var req Request
	if len(rawQuery) > MaxQueryBytes {
		return req, fmt.Errorf("the query is %d bytes; at most %d are accepted", len(rawQuery), MaxQueryBytes)
	}
	seen := map[string]bool{}
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return req, fmt.Errorf("malformed parameter name: %v", err)
		}
		if !single[key] {
			continue
		}
		if seen[key] {
			return req, fmt.Errorf("parameter %s appears more than once", key)
		}
		seen[key] = true
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return req, fmt.Errorf("parameter %s is not properly escaped", key)
		}
		if !utf8.ValidString(value) {
			return req, fmt.Errorf("parameter %s is not UTF-8", key)
		}
		switch key {
		case "client_id":
			req.ClientID = value
		case "response_type":
			req.ResponseType = value
		case "redirect_uri":
			req.RedirectURI = value
		case "scope":
			req.Scope = value
		case "state":
			req.RawState, req.HasState = rawValue, true
		case "code_challenge":
			req.CodeChallenge = value
		case "code_challenge_method":
			req.CodeChallengeMethod = value
		}
	}
	return req, nil
}

// State is the decoded state.
func (r Request) State() string {
	s, _ := url.QueryUnescape(r.RawState)
	return s
}

// errRedirectURI explains why a redirect_uri can never be redirected to.
func checkRedirectShape(raw string) error {
	if raw == "" {
		return errors.New("redirect_uri is missing")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("redirect_uri is not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("redirect_uri must not contain a fragment")
	}
	return nil
}
