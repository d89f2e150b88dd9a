// Package clientaddr finds the address a request came from, for per-address limits. A
// forwarded-for header is a claim anyone can write, so it is believed only from a peer the
// TokenServer names as its proxy (spec.trustedProxyCIDRs), and then only as far as the chain of
// trusted proxies reaches: the rightmost address that is not itself a trusted proxy.
package clientaddr

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops bounds how much of a forwarded-for chain is read: a longer header is someone's
// attempt to make us work, not a real proxy chain.
const maxHops = 16

// Of returns the client address of r: its TCP peer, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For address that is not a trusted proxy. It never returns the empty
// string for a request from the network (an unparsable peer is returned as it is).
func Of(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := Peer(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !Trusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	hops := 0
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			if hops++; hops > maxHops {
				return client.String()
			}
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// A garbled entry ends what can be believed: the last good hop is the client.
				return client.String()
			}
			client = a.Unmap()
			if !Trusted(client, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

// Peer parses a RemoteAddr ("ip:port").
func Peer(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Trusted reports whether addr is in one of the prefixes.
func Trusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
