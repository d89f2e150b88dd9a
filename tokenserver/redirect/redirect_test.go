package redirect

import (
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

// FuzzAllowed: whatever the candidate, an allowed URI is an exact entry or shares scheme and
// host with a prefix entry.
func FuzzAllowed(f *testing.F) {
	a, _ := Parse(nil)
	f.Add("https://lpcdn.lpsnmedia.net/le_unified_window/index.html?x=1")
	f.Add("https://lpcdn.lpsnmedia.net/le_unified_window/@evil.example")
	f.Add("https://lpcdn.lpsnmedia.net/le_unified_window/..%2f..%2f")
	f.Fuzz(func(t *testing.T, uri string) {
		if !a.Allowed(uri) || a.exact[uri] {
			return
		}
		if !strings.HasPrefix(uri, "https://lpcdn.lpsnmedia.net/le_unified_window/") {
			t.Fatalf("Allowed(%q) without a matching entry", uri)
		}
	})
}
