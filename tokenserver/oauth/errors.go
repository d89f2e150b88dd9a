// Package oauth serves the OAuth 2.0 endpoints LivePerson calls: the token endpoint (code flow)
// and, for the pop-out window, the authorization endpoint.
package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error is an RFC 6749 error response, written in one place (WriteError) so every endpoint
// answers alike.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Reason is the precise cause, for our logs and metrics only: LivePerson shows every failure
	// to the consumer as "Failed to validate user", so the brand's operators need the detail.
	Reason string `json:"-"`
	// RetryAfter, when set, is sent as Retry-After (a 429).
	RetryAfter time.Duration `json:"-"`
	// Challenge is a 401's WWW-Authenticate value; empty means /token's client authentication
	// challenge (HTTP Basic, RFC 6749 section 5.2).
	Challenge string `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Reason }

// Errorf is an error with its HTTP status, RFC 6749 code, the reason for our logs, and the
// description the caller sees.
func Errorf(status int, code, reason, description string) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Description: description}
}

// InvalidRequest, InvalidGrant and InvalidClient are RFC 6749's errors.
func InvalidRequest(reason, description string) *Error {
	return Errorf(http.StatusBadRequest, "invalid_request", reason, description)
}

// InvalidGrant: the code is unknown, expired, used, or not this client's.
func InvalidGrant(reason, description string) *Error {
	return Errorf(http.StatusBadRequest, "invalid_grant", reason, description)
}

// InvalidClient: client authentication failed (a 401 with an HTTP Basic challenge).
func InvalidClient(reason string) *Error {
	return Errorf(http.StatusUnauthorized, "invalid_client", reason, "client authentication failed")
}

// WriteError writes e as JSON, with the headers RFC 6749 asks for.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		challenge := e.Challenge
		if challenge == "" {
			challenge = `Basic realm="token", error="invalid_client"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", RetryAfterSeconds(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, so a client that
// waits that long is not refused again.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// WriteJSON writes a successful JSON response that must never be cached (it carries tokens).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeJSONHeader(w, status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONBytes is WriteJSON for a body already encoded (as json.Encoder encodes it, newline
// included).
func WriteJSONBytes(w http.ResponseWriter, status int, body []byte) {
	writeJSONHeader(w, status)
	_, _ = w.Write(body)
}

func writeJSONHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
}
