package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The response is written by hand; it must be the bytes json.Encoder wrote before, for any
// value, including ones no server writes today.
func TestTokenResponseIsJSONEncoders(t *testing.T) {
	t.Parallel()
	for _, r := range []tokenResponse{
		{AccessToken: "aB3-_x", TokenType: "Bearer", ExpiresIn: 3600, IDToken: "eyJh.eyJz.c2ln"},
		{AccessToken: "", TokenType: "", ExpiresIn: 0, IDToken: ""},
		{AccessToken: "a", TokenType: "Bearer", ExpiresIn: -5, IDToken: "h.e.k.iv.c.t"},
		{AccessToken: `a"b\c`, TokenType: "Bearer <&>", ExpiresIn: 1 << 62, IDToken: "x.y\u2028z\x00\xff"},
		{AccessToken: "a+b/c=", TokenType: "Bearer", ExpiresIn: 1, IDToken: "é.ü"},
	} {
		writesAsEncoder(t, r)
	}
}

func writesAsEncoder(t *testing.T, r tokenResponse) {
	t.Helper()
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(&r); err != nil {
		t.Fatal(err)
	}
	if got := r.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%+v:\n got %s\nwant %s", r, got, want.Bytes())
	}
}

func FuzzTokenResponse(f *testing.F) {
	f.Add("aB3-_x", "Bearer", int64(3600), "eyJh.eyJz.c2ln")
	f.Add(`"`, "<", int64(-1), "\xff")
	f.Fuzz(func(t *testing.T, access, typ string, exp int64, id string) {
		writesAsEncoder(t, tokenResponse{AccessToken: access, TokenType: typ, ExpiresIn: exp, IDToken: id})
	})
}

// The body is read whole up to MaxFormBytes whatever Content-Length says (a chunked request
// gives none), and refused past it.
func TestReadBodyBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		size          int
		contentLength int64
		tooBig        bool
	}{
		{"small, length given", 700, 700, false},
		{"small, no length", 700, -1, false},
		{"exactly the limit, no length", int(MaxFormBytes), -1, false},
		{"exactly the limit, length given", int(MaxFormBytes), MaxFormBytes, false},
		{"over the limit, no length", int(MaxFormBytes) + 1, -1, true},
		{"far over the limit, no length", 10 * int(MaxFormBytes), -1, true},
		{"empty", 0, 0, false},
		{"a length far beyond the body", 700, 1 << 40, false},
		{"a length beyond the limit, the body too", int(MaxFormBytes) + 1, 1 << 40, true},
		{"a length under the body's", 700, 10, false}, // net/http never lets this through; read it all
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("a"), tc.size)
			r := httptest.NewRequest(http.MethodPost, "/token", io.NopCloser(bytes.NewReader(body)))
			r.ContentLength = tc.contentLength
			got, err := readBody(httptest.NewRecorder(), r)
			var tooBig *http.MaxBytesError
			switch {
			case tc.tooBig && !errors.As(err, &tooBig):
				t.Fatalf("err %v, want a MaxBytesError", err)
			case !tc.tooBig && (err != nil || !bytes.Equal(got, body)):
				t.Fatalf("read %d bytes, %v; want the %d sent", len(got), err, len(body))
			}
			if tc.contentLength > usualFormBytes && len(body) <= usualFormBytes && cap(got) > usualFormBytes+1 {
				t.Errorf("a %d-byte body in a %d-byte buffer: Content-Length reserved memory before the bytes came", len(body), cap(got))
			}
		})
	}
}

func BenchmarkTokenResponse(b *testing.B) {
	r := tokenResponse{AccessToken: strings.Repeat("a", 43), TokenType: "Bearer", ExpiresIn: 3600, IDToken: strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 60)}
	buf := make([]byte, 0, 2048)
	for b.Loop() {
		buf = r.appendJSON(buf[:0])
	}
}
