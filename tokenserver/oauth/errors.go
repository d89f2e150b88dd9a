// Package oauth serves the OAuth 2.0 endpoints LivePerson calls: the token endpoint (code flow)
// and, for the pop-out window, the authorization endpoint.
package oauth

import (
	"encoding/json"
	"net/http"
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
}

func (e *Error) Error() string { return e.Code + ": " + e.Reason }

func errorf(status int, code, reason, description string) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Description: description}
}

// RFC 6749 error constructors.
func invalidRequest(reason, description string) *Error {
	return errorf(http.StatusBadRequest, "invalid_request", reason, description)
}

func invalidGrant(reason, description string) *Error {
	return errorf(http.StatusBadRequest, "invalid_grant", reason, description)
}

func invalidClient(reason string) *Error {
	return errorf(http.StatusUnauthorized, "invalid_client", reason, "client authentication failed")
}

// WriteError writes e as JSON, with the headers RFC 6749 asks for.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="token", error="invalid_client"`)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// WriteJSON writes a successful JSON response that must never be cached (it carries tokens).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
