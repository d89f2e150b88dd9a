package redirect

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseRejectsBadEntries(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"http://brand.example/cb", "must use https"},
		{"ftp://brand.example/cb", "must use https"},
		{"https:///cb", "absolute URL with a host"},
		{"https://user@brand.example/cb", "no user info"},
		{"https://brand.example/cb#frag", "must not have a fragment"},
		{"prefix:https://brand.example", "a prefix must end with '/'"},
		{"prefix:https://brand.example/window", "a prefix must end with '/'"},
		{"prefix:https://brand.example/w/?a=1", "a prefix must end with '/'"},
		{"https://brand example/cb", "not a URL"},
	} {
		_, err := Parse([]string{"https://ok.example/cb", tc.entry})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "redirectURIs[1]") {
			t.Errorf("Parse(%q) = %v, want an error naming redirectURIs[1] and containing %q", tc.entry, err, tc.want)
		}
	}
}

func TestParseAcceptsLoopbackHTTP(t *testing.T) {
	for _, e := range []string{"http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9000/cb", "prefix:http://localhost/w/"} {
		if _, err := Parse([]string{e}); err != nil {
			t.Errorf("Parse(%q) = %v, want nil", e, err)
		}
	}
}

func TestAllowedWithDefaults(t *testing.T) {
	a, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	state := "?lpUnifiedWindowConfig=%7B%22a%22%3A1%7D&x=y"
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://liveperson.net", true},
		{"https://liveperson.net/", true},
		{"https://liveperson.net/oauth2/code_redirect", true},
		{"https://lpcdn.lpsnmedia.net/le_unified_window/index.html", true},
		{"https://lpcdn.lpsnmedia.net/le_unified_window/index.html" + state, true},
		{"https://liveperson.net/other", false},
		{"https://liveperson.net.evil.example", false},
		{"https://lpcdn.lpsnmedia.net/le_unified_window", false},
		{"https://lpcdn.lpsnmedia.net/other/index.html", false},
		{"https://lpcdn.lpsnmedia.net/le_unified_window/index.html#frag", false},
		{"http://lpcdn.lpsnmedia.net/le_unified_window/index.html", false},
		{"", false},
	} {
		if got := a.Allowed(tc.uri); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

// window is the directory of the default prefix entry: LivePerson's pop-out window.
const window = "https://lpcdn.lpsnmedia.net/le_unified_window/"

// TestPrefixRedirectCannotEscapeItsPath: a code or token appended to an allowed URI must reach
// the prefix's directory and nowhere else on its host, whatever a browser or the host's server
// does with escapes, dot segments and separators.
func TestPrefixRedirectCannotEscapeItsPath(t *testing.T) {
	const (
		loopback = "prefix:http://localhost:8080/a/b/"
		root     = "prefix:https://brand.example/"
	)
	for _, tc := range []struct {
		entry, uri string // entry "" means Defaults
		want       bool
	}{
		// Inside the directory.
		{"", window + "index.html", true},
		{"", window + "index.html?lpUnifiedWindowConfig=%7B%22a%22%3A1%7D&next=../../evil/%2e%2e", true},
		{"", window, true}, // the directory itself (its index): still inside
		{"", window + "?x=1", true},
		{"", window + "v2/index.html", true},
		{"", window + "v2/", true},
		{"", window + "index%2Ehtml", true}, // an encoded dot inside a name is not a dot segment
		{"", window + "a..b", true},
		{"", window + "@evil.example", true}, // a path segment of lpcdn, not a host
		{"", "https://LPCDN.lpsnmedia.net/le_unified_window/index.html", true},
		{"", "HTTPS://lpcdn.lpsnmedia.net/le_unified_window/index.html", true},
		{loopback, "http://localhost:8080/a/b/x", true},
		{loopback, "http://localhost:8080/a/b/", true},
		{root, "https://brand.example/x", true},
		{root, "https://brand.example/", true},

		// Dot segments, in every spelling.
		{"", window + "../evil", false},
		{"", window + "..", false},
		{"", window + "./index.html", false},
		{"", window + "%2e%2e/evil/steal.html", false},
		{"", window + "%2E%2E/evil", false},
		{"", window + "%2e./evil", false},
		{"", window + ".%2E/evil", false},
		{"", window + "%2e", false},
		{"", window + "%252e%252e/evil", false}, // decoded twice by some proxies
		{"", window + "...", false},             // Windows servers drop trailing dots
		{"", window + "..%20/evil", false},      // and trailing spaces
		{"", window + "%c0%ae%c0%ae/evil", false},
		// Separators that are not '/'.
		{"", window + `..\evil`, false},
		{"", window + `x\..\..\evil`, false},
		{"", window + "..%2fevil", false},
		{"", window + "x%2F..%2F..%2Fevil", false},
		{"", window + "..%5cevil", false},
		{"", window + "..%5Cevil", false},
		{"", window + "x%252f..%252f..%252fevil", false},
		// Path parameters, empty segments, control and other characters.
		{"", window + "..;/evil", false},
		{"", window + "index.html;jsessionid=1", false},
		{"", window + "/evil.example/steal.html", false},
		{"", window + "x//y", false},
		{"", window + "%00", false},
		{"", window + "x%0d%0aSet-Cookie:a=b", false},
		{"", window + "a\tb", false},
		{"", window + "a b", false},
		{"", window + "caf%C3%A9", false},
		// Fragments and user info.
		{"", window + "index.html#frag", false},
		{"", window + "index.html?x=1#frag", false},
		{"", "https://user@lpcdn.lpsnmedia.net/le_unified_window/x", false},
		{"", "https://lpcdn.lpsnmedia.net@evil.example/le_unified_window/x", false},
		// Another scheme, host or port.
		{"", "http://lpcdn.lpsnmedia.net/le_unified_window/x", false},
		{"", "//lpcdn.lpsnmedia.net/le_unified_window/x", false},
		{"", "https://lpcdn.lpsnmedia.net.evil.example/le_unified_window/x", false},
		{"", "https://lpcdn.lpsnmedia.net./le_unified_window/x", false},
		{"", "https://lpcdn.lpsnmedia.net:443/le_unified_window/x", false},
		{"", "https://lpcdn.lpsnmedia.net:8443/le_unified_window/x", false},
		{loopback, "http://localhost/a/b/x", false},
		{loopback, "http://localhost:08080/a/b/x", false},
		{loopback, "https://localhost:8080/a/b/x", false},
		// Not whole segments of the prefix's path.
		{"", "https://lpcdn.lpsnmedia.net/le_unified_window", false},
		{"", "https://lpcdn.lpsnmedia.net/le_unified_windowx/index.html", false},
		{"", "https://lpcdn.lpsnmedia.net/LE_UNIFIED_WINDOW/index.html", false},
		{"", "https://lpcdn.lpsnmedia.net/le%5Funified_window/index.html", false}, // compared as written
		{loopback, "http://localhost:8080/a/bx", false},
		{loopback, "http://localhost:8080/a/b", false},
		{loopback, "http://localhost:8080/a/b/../../evil", false},
		{root, "https://brand.example//evil.example/x", false},
		{root, "https://brand.example", false},
	} {
		var entries []string
		if tc.entry != "" {
			entries = []string{tc.entry}
		}
		a, err := Parse(entries)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Allowed(tc.uri); got != tc.want {
			t.Errorf("Allowed(%q) with %v = %v, want %v", tc.uri, entries, got, tc.want)
		}
	}
}

// TestPrefixEntryCannotEscapeItsPath: a prefix entry is held to the rules of the URIs it allows.
func TestPrefixEntryCannotEscapeItsPath(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"prefix:https://brand.example/a/../b/", "dot segments"},
		{"prefix:https://brand.example/a/%2E%2e/", "dot segments"},
		{"prefix:https://brand.example/./", "dot segments"},
		{"prefix:https://brand.example/a%2fb/", "encoded separator"},
		{"prefix:https://brand.example/a%5Cb/", "encoded separator"},
		{`prefix:https://brand.example/a\b/`, "must not contain"},
		{"prefix:https://brand.example//a/", "empty segments"},
		{"prefix:https://brand.example/a;x/", "must not contain"},
		{"prefix:https://brand.example/a%253b/", "encoded twice"},
	} {
		_, err := Parse([]string{tc.entry})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.entry, err, tc.want)
		}
	}
}

// FuzzAllowed: whenever a URI is allowed by a prefix entry, the URL a browser opens for it has
// the entry's scheme, host and port, and its path, with dot segments removed and escapes decoded
// (by Go's resolver, and by a model of a browser and of a server that decodes twice), still lies
// in the entry's directory, segment by segment.
func FuzzAllowed(f *testing.F) {
	entries := append(slices.Clone(Defaults), "prefix:http://127.0.0.1:8080/a/b/", "prefix:https://brand.example/")
	a, err := Parse(entries)
	if err != nil {
		f.Fatal(err)
	}
	dirs := map[string][]string{ // scheme://host:port → directory segments
		"https://lpcdn.lpsnmedia.net:": {"le_unified_window"},
		"http://127.0.0.1:8080":        {"a", "b"},
		"https://brand.example:":       {},
	}
	for _, s := range []string{
		window + "index.html?x=1", window + "@evil.example", window + "..%2f..%2f", window + "%2e%2e/evil/steal.html",
		window + "../evil", window + `..\evil`, window + "%5c..%5cevil", window + "%252e%252e/evil", window + "..;/evil",
		window + "/evil", window + "%2E./x", "http://127.0.0.1:8080/a/b/x", "http://127.0.0.1:8080/a/b/%2e%2e/%2e%2e/x",
		"https://brand.example/x/../../y", "https://brand.example//evil.example/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !a.Allowed(uri) || a.exact[uri] {
			return
		}
		u, err := url.Parse(uri)
		if err != nil || u.User != nil || u.Fragment != "" {
			t.Fatalf("Allowed(%q): not a plain URL (%v)", uri, err)
		}
		dir, ok := dirs[u.Scheme+"://"+strings.ToLower(u.Hostname())+":"+u.Port()]
		if !ok {
			t.Fatalf("Allowed(%q): scheme, host or port of no prefix entry", uri)
		}
		ref, err := url.Parse(u.EscapedPath())
		if err != nil {
			t.Fatalf("Allowed(%q): its path does not parse: %v", uri, err)
		}
		for model, p := range map[string]string{"Go's resolver": u.ResolveReference(ref).Path, "a browser": browserPath(u.EscapedPath())} {
			if !inDir(p, dir) {
				t.Fatalf("Allowed(%q), but %s opens %q, outside %v", uri, model, p, dir)
			}
		}
	})
}

// browserPath is what a browser opens for an escaped path (WHATWG URL, special schemes): '\' is
// a separator, "%2e" in any case is a dot in a dot segment, dot segments are removed; then a
// server decodes it, twice for good measure.
func browserPath(escaped string) string {
	var out []string
	for _, s := range strings.Split(strings.ReplaceAll(escaped, `\`, "/"), "/")[1:] {
		switch strings.ToLower(s) {
		case ".", "%2e":
			continue
		case "..", ".%2e", "%2e.", "%2e%2e":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		out = append(out, s)
	}
	p := "/" + strings.Join(out, "/")
	for range 2 {
		if d, err := url.PathUnescape(p); err == nil {
			p = d
		}
	}
	return p
}

// inDir: p's segments (split at '/' and '\') start with dir's and hold no dot segment.
func inDir(p string, dir []string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(strings.ReplaceAll(p[1:], `\`, "/"), "/")
	for _, s := range segs {
		if s == "." || s == ".." {
			return false
		}
	}
	return len(segs) > len(dir) && slices.Equal(segs[:len(dir)], dir)
}
