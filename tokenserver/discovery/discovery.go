// Package discovery serves the pre-rendered OpenID configuration and JWKS documents of the
// current snapshot, with ETags so relying parties can revalidate for free.
package discovery

import (
	"net/http"
	"strconv"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// MaxAge is how long relying parties may cache either document. Keep it well under a
// SigningKey's publishAhead, so a new key is fetched before it signs.
const MaxAge = v1alpha1.JWKSMaxAge

// Source gives the current snapshot, or nil before the first one is built.
type Source interface {
	Snapshot() *snapshot.Snapshot
}

// Handler serves one of the two documents.
type Handler struct {
	Source Source
	Pick   func(*snapshot.Snapshot) snapshot.Document
}

// JWKS serves the public key set.
func JWKS(src Source) *Handler {
	return &Handler{Source: src, Pick: func(s *snapshot.Snapshot) snapshot.Document { return s.JWKS }}
}

// Configuration serves the OpenID Provider metadata.
func Configuration(src Source) *Handler {
	return &Handler{Source: src, Pick: func(s *snapshot.Snapshot) snapshot.Document { return s.Discovery }}
}

var cacheControl = "public, max-age=" + strconv.Itoa(int(MaxAge.Seconds()))

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	snap := h.Source.Snapshot()
	if snap == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	doc := h.Pick(snap)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("ETag", doc.ETag)
	hdr.Set("Access-Control-Allow-Origin", "*")
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == doc.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(doc.Body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(doc.Body)
}

// Routes are the discovery document's and the JWKS's routes.
func Routes(src Source) []oauth.Route {
	return []oauth.Route{
		{Name: "discovery", Path: endpoints.DiscoveryPath, Handler: Configuration(src)},
		{Name: "jwks", Path: endpoints.JWKSPath, Handler: JWKS(src)},
	}
}
