package login

import (
	"net/http"
	"net/netip"

	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// fromHeaders takes the person from an authenticating proxy's headers. They are believed only
// from the proxy's own address: the TCP peer, never a forwarded-for header anyone can write.
func (h *Handler) fromHeaders(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, client *snapshot.Client, req authorize.Request) {
	th := snap.Login.TrustedHeaders
	if !trustedPeer(r.RemoteAddr, th.Proxies) {
		h.Log.Info("Authorization refused: request did not come through the trusted proxy", "clientID", client.ID)
		h.errorPage(w, http.StatusForbidden, notAllowed)
		return
	}
	user := r.Header.Get(th.UserHeader)
	if user == "" {
		h.Log.Info("Authorization refused: the proxy sent no user", "clientID", client.ID, "header", th.UserHeader)
		h.errorPage(w, http.StatusForbidden, notAllowed)
		return
	}
	claims := map[string]string{"preferred_username": user}
	if th.EmailHeader != "" {
		if email := r.Header.Get(th.EmailHeader); email != "" {
			claims["email"] = email
		}
	}
	h.complete(w, r, snap, client, req, identity(client, user, claims))
}

func trustedPeer(remoteAddr string, proxies []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
