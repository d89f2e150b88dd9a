package clientaddr

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestOfBelievesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy configured, header ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"untrusted peer, header ignored", "203.0.113.7:5000", []string{"10.1.1.1"}, "203.0.113.7"},
		{"trusted peer, header believed", "10.0.0.5:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left part ignored", "10.0.0.5:443", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies walked", "10.0.0.5:443", []string{"198.51.100.1, 10.2.2.2"}, "198.51.100.1"},
		{"several header lines", "10.0.0.5:443", []string{"1.2.3.4", "198.51.100.9"}, "198.51.100.9"},
		{"garbage stops at last good hop", "10.0.0.5:443", []string{"198.51.100.1, nonsense"}, "10.0.0.5"},
		{"trusted peer, no header", "10.0.0.5:443", nil, "10.0.0.5"},
		{"ipv6 proxy", "[fd00::1]:443", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:10.0.0.5]:443", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/token", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			trusted := proxies
			if tc.name == "no proxy configured, header ignored" {
				trusted = nil
			}
			if got := Of(r, trusted); got != tc.want {
				t.Errorf("Of() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOfBoundsTheChain(t *testing.T) {
	r := httptest.NewRequest("POST", "/token", nil)
	r.RemoteAddr = "10.0.0.5:443"
	long := "198.51.100.1"
	for range 100 {
		long += ", 10.9.9.9"
	}
	r.Header.Set("X-Forwarded-For", long)
	if got := Of(r, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); got != "10.9.9.9" {
		t.Errorf("Of() = %q, want the last hop read before the bound (10.9.9.9)", got)
	}
}
