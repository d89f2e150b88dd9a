// Package redirect checks redirect_uri values against a client's allowlist. LivePerson sends
// several fixed values (its site, with and without a trailing slash) and, for the pop-out window,
// a window URL whose query changes every time, so the allowlist has exact entries and explicit
// "prefix:" entries. A prefix must end at a path boundary ('/'), so its host can never be
// extended ("https://brand.example" would also match "https://brand.example.evil.net").
package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// PrefixMarker starts an allowlist entry that matches by prefix.
const PrefixMarker = "prefix:"

// Defaults are LivePerson's known redirect_uri values, used when a client lists none.
var Defaults = []string{
	"https://liveperson.net",
	"https://liveperson.net/",
	"https://liveperson.net/oauth2/code_redirect",
	"prefix:https://lpcdn.lpsnmedia.net/le_unified_window/",
}

// Allowlist is a parsed list of entries.
type Allowlist struct {
	exact    map[string]bool
	prefixes []string
}

// Parse validates every entry and returns the allowlist, or an error naming each bad entry.
// An empty list means Defaults.
func Parse(entries []string) (Allowlist, error) {
	if len(entries) == 0 {
		entries = Defaults
	}
	a := Allowlist{exact: map[string]bool{}}
	var errs []error
	for i, e := range entries {
		raw, prefix := strings.CutPrefix(e, PrefixMarker)
		if err := checkEntry(raw, prefix); err != nil {
			errs = append(errs, fmt.Errorf("redirectURIs[%d] %q: %w", i, e, err))
			continue
		}
		if prefix {
			a.prefixes = append(a.prefixes, raw)
		} else {
			a.exact[raw] = true
		}
	}
	return a, errors.Join(errs...)
}

func checkEntry(raw string, prefix bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if err := checkSchemeHost(u); err != nil {
		return err
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	if prefix {
		if u.RawQuery != "" || !strings.HasSuffix(u.Path, "/") {
			return errors.New("a prefix must end with '/' after its host or path, so it matches whole path segments only")
		}
	}
	return nil
}

// checkSchemeHost: https, or http to a loopback host (local development).
func checkSchemeHost(u *url.URL) error {
	if u.Host == "" || u.User != nil {
		return errors.New("must be an absolute URL with a host and no user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http is accepted only for localhost)")
	}
	return errors.New("must use https")
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Allowed reports whether uri may be redirected to: equal to an exact entry, or starting with a
// prefix entry while still being a well-formed URL of the same scheme and host.
func (a Allowlist) Allowed(uri string) bool {
	if a.exact[uri] {
		return true
	}
	for _, p := range a.prefixes {
		if !strings.HasPrefix(uri, p) {
			continue
		}
		u, err := url.Parse(uri)
		if err != nil || u.Fragment != "" || strings.Contains(uri, "#") {
			return false
		}
		pu, _ := url.Parse(p)
		return u.Scheme == pu.Scheme && u.Host == pu.Host && u.User == nil
	}
	return false
}
