package popout

import (
	"net/http"
	"net/netip"
)

// trustedHeaders takes the person from an authenticating proxy's headers, at once: it has no
// route of its own.
type trustedHeaders struct{ h *Handler }

// Begin takes the person from the proxy's headers. They are believed only from the proxy's own
// address: the TCP peer, never a forwarded-for header anyone can write.
func (c trustedHeaders) Begin(w http.ResponseWriter, r *http.Request, f Flow) {
	h, snap, client, req := c.h, f.Snap, f.Client, f.Req
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
