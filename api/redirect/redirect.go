// Package redirect checks redirect_uri values against a client's allowlist. LivePerson sends
// several fixed values (its site, with and without a trailing slash) and, for the pop-out window,
// a window URL whose query changes every time, so the allowlist has exact entries and explicit
// "prefix:" entries.
//
// An exact entry matches byte for byte.
//
// A prefix entry names a directory: a scheme, a host and a path ending in '/'. A candidate is
// allowed only where every browser, and the server behind that host, would open a path inside
// that directory; codes and tokens are appended to it, so a URI that resolves elsewhere on the
// host leaks them there. The candidate is therefore judged in its raw form, never cleaned or
// decoded into something that matches, and refused when its path holds anything that some
// browser or server resolves differently: dot segments ("." or "..", also percent-encoded in any
// case, doubly encoded, or padded with the dots and spaces Windows servers drop), encoded
// separators (%2F, %5C in any case), backslashes, ';' (path parameters: "..;/" climbs on some
// servers), empty segments ("//"), spaces, control and non-ASCII characters. Its scheme and host
// must be the entry's, compared case-insensitively, with the port written exactly as in the entry
// (":443" and no port are not treated as equal); it must carry no user info and no fragment. Its
// query is free: LivePerson's window URL carries a changing one. Its path must then start with
// every segment of the entry's path, compared whole and byte for byte, so
// "prefix:https://h/a/b/" allows https://h/a/b/x and https://h/a/b/ itself (the directory's
// index), but neither https://h/a/bx nor https://h/a/b. Prefix entries are held to the same path
// rules when parsed, and must end at a path boundary ('/'), so the host can never be extended
// ("https://brand.example" would also match "https://brand.example.evil.net").
package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
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
	prefixes []prefix
}

// prefix is a parsed prefix entry.
type prefix struct {
	// origin is "scheme://host[:port]" as the entry writes it.
	origin string
	// dir is the entry's path segments, raw, without the leading and trailing empty ones:
	// "/a/b/" is ["a", "b"], "/" is [].
	dir []string
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
		raw, isPrefix := strings.CutPrefix(e, PrefixMarker)
		p, err := checkEntry(raw, isPrefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("redirectURIs[%d] %q: %w", i, e, err))
			continue
		}
		if isPrefix {
			a.prefixes = append(a.prefixes, p)
		} else {
			a.exact[raw] = true
		}
	}
	return a, errors.Join(errs...)
}

// checkEntry validates one entry and, for a prefix entry, parses it.
func checkEntry(raw string, isPrefix bool) (prefix, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return prefix{}, errors.New("not a URL")
	}
	if err := checkSchemeHost(u); err != nil {
		return prefix{}, err
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return prefix{}, errors.New("must not have a fragment")
	}
	if !isPrefix {
		return prefix{}, nil
	}
	// Candidates are compared with the entry as written, so its scheme and host must be
	// written plainly: what url.Parse read is what the string says.
	origin := u.Scheme + "://" + u.Host
	if len(raw) < len(origin) || !strings.EqualFold(raw[:len(origin)], origin) {
		return prefix{}, errors.New("a prefix must write its scheme and host plainly, without escapes")
	}
	path := raw[len(origin):]
	if u.RawQuery != "" || u.ForceQuery || !strings.HasSuffix(path, "/") {
		return prefix{}, errors.New("a prefix must end with '/' after its host or path, so it matches whole path segments only")
	}
	segs, err := checkPath(path)
	if err != nil {
		return prefix{}, fmt.Errorf("a prefix %w", err)
	}
	return prefix{origin: raw[:len(origin)], dir: segs[:len(segs)-1]}, nil
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

// Allowed reports whether uri may be redirected to: equal to an exact entry, or inside the
// directory of a prefix entry by the rules of the package comment.
func (a Allowlist) Allowed(uri string) bool {
	if a.exact[uri] {
		return true
	}
	for _, p := range a.prefixes {
		if p.allows(uri) {
			return true
		}
	}
	return false
}

func (p prefix) allows(uri string) bool {
	// The raw authority must be the entry's: this refuses user info ("host@evil"), another port
	// or a port written differently, and anything url.Parse would have to decode.
	n := len(p.origin)
	if len(uri) <= n || !strings.EqualFold(uri[:n], p.origin) || uri[n] != '/' {
		return false
	}
	rest := uri[n:]
	if strings.ContainsRune(rest, '#') {
		return false
	}
	path, _, _ := strings.Cut(rest, "?")
	segs, err := checkPath(path)
	if err != nil || len(segs) <= len(p.dir) || !slices.Equal(segs[:len(p.dir)], p.dir) {
		return false
	}
	// Go's own parser must read the same URL (it also refuses control characters anywhere,
	// the query included).
	u, err := url.Parse(uri)
	return err == nil && u.User == nil && u.Opaque == "" && u.Fragment == "" &&
		strings.EqualFold(u.Scheme+"://"+u.Host, p.origin) && u.EscapedPath() == path
}

// checkPath checks a raw (escaped) absolute path and returns its segments after the leading
// '/': "/a/b/" is ["a", "b", ""]. Only the last segment may be empty (a trailing '/').
func checkPath(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("path must start with '/'")
	}
	segs := strings.Split(path[1:], "/")
	for i, s := range segs {
		if s == "" {
			if i == len(segs)-1 {
				continue
			}
			return nil, errors.New("path must not have empty segments ('//')")
		}
		if err := checkSegment(s); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

// checkSegment checks one raw path segment, as written and once decoded.
func checkSegment(s string) error {
	for i := 0; i < len(s); i++ {
		if !pathByte(s[i]) {
			return fmt.Errorf("path must not contain %q (only letters, digits, %%-escapes and -._~!$&'()*+,=:@)", s[i])
		}
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return errors.New("path has a malformed %-escape")
	}
	// Only dots (and spaces) is a dot segment somewhere: "." and ".." everywhere, "..." and
	// ".. " on servers that drop trailing dots and spaces from names.
	if strings.Trim(d, ". ") == "" {
		return errors.New("path must not have dot segments ('.' or '..', also encoded)")
	}
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case c == '/' || c == '\\':
			return errors.New("path must not contain an encoded separator (%2F, %5C)")
		case c == '%':
			return errors.New("path must not be encoded twice (%25)")
		case c == ';':
			return errors.New("path must not contain path parameters (';')")
		case c <= ' ' || c >= 0x7f:
			return errors.New("path must not contain spaces, control or non-ASCII characters, even encoded")
		}
	}
	return nil
}

// pathByte: RFC 3986 pchar without ';', which some servers read as path parameters, so a path
// holding only these bytes means the same to every browser and server once its escapes are
// checked. Backslashes, spaces and the rest are refused rather than guessed at: browsers turn
// '\' into '/'.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,=:@%", c) >= 0
}
