package idtoken

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// marshalled is how Mint wrote its payload before appendPayload: a map through json.Marshal.
// appendPayload must write the same bytes.
func marshalled(t *testing.T, s *snapshot.Snapshot, c *snapshot.Client, id Identity, iat, exp int64, sdes []lpsdes.SDE) []byte {
	claims := map[string]any{}
	for k, v := range c.StaticClaims {
		claims[k] = v
	}
	for k, v := range id.Claims {
		claims[k] = v
	}
	claims["iss"] = s.Issuer
	claims["sub"] = id.Subject
	claims["aud"] = c.Audience
	claims["iat"] = iat
	claims["exp"] = exp
	if len(sdes) > 0 {
		claims["lp_sdes"] = sdes
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSDEs(t *testing.T, raw string) []lpsdes.SDE {
	t.Helper()
	s, err := lpsdes.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPayloadIsJSONMarshals(t *testing.T) {
	t.Parallel()
	snap := &snapshot.Snapshot{Issuer: "https://auth.brand.example/<lp>&"}
	templ, err := lpsdes.FromValue([]any{map[string]any{"type": "ctmrinfo", "info": map[string]any{"balance": 12.5, "companySize": float64(1e15), "ctype": "silver"}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		client snapshot.Client
		id     Identity
		sdes   []lpsdes.SDE
	}{
		"bare": {client: snapshot.Client{Audience: "lp-client"}, id: Identity{Subject: "cust-1"}},
		"claims over static claims, static claims the server sets are dropped": {
			client: snapshot.Client{Audience: "aud", StaticClaims: map[string]string{"tier": "gold", "email": "static@x", "iss": "forged", "sub": "forged", "exp": "1", "lp_sdes": "kept: no SDEs"}},
			id:     Identity{Subject: "cust-2", Claims: map[string]string{"email": "ada@brand.example", "given_name": "Ada", "zz": "last", "AA": "first"}},
		},
		"lp_sdes replaces a static claim of that name": {
			client: snapshot.Client{Audience: "aud", StaticClaims: map[string]string{"lp_sdes": "gone"}},
			id:     Identity{Subject: "s"},
			sdes:   mustSDEs(t, `[{"type":"personal","personal":{"firstname":"Ada","age":{"age":36,"year":1815},"contacts":[{"email":"a@b.c","phone":"+1 <5>","phoneType":"MOBILE"}],"gender":"FEMALE"}},{"type":"ctmrinfo","info":{"customerId":"8271","balance":-1.50e3,"lastPaymentDate":{"day":1,"month":2,"year":2026}}}]`),
		},
		"template SDEs with float64 numbers": {client: snapshot.Client{Audience: "a"}, id: Identity{Subject: "s"}, sdes: lpsdes.Merge(templ, mustSDEs(t, `[{"type":"ctmrinfo","info":{"ctype":"gold"}}]`))},
		"escapes": {
			client: snapshot.Client{Audience: "a\"b\\c"},
			id:     Identity{Subject: "tab\there\nnul\x00 \u2028\u2029 é 😀 \x7f", Claims: map[string]string{"k\u2029<>&": "bad \xff utf8 \xe2\x80", "\x01": "\x1f"}},
		},
	}
	for name, tc := range cases {
		got := appendPayload(nil, snap, &tc.client, tc.id, 1800000000, 1800003600, tc.sdes)
		want := marshalled(t, snap, &tc.client, tc.id, 1800000000, 1800003600, tc.sdes)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func FuzzPayloadString(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é😀", `"\`, "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
		// And as a value and a key of lp_sdes-like content.
		v := map[string]any{s: []any{s, map[string]any{"n": json.Number("1.5e3"), s: s}}}
		want, _ = json.Marshal(v)
		if got := appendValue(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
