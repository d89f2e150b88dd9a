package idtoken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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
		"identity claims named like the server's are dropped (Validate refuses them too)": {
			client: snapshot.Client{Audience: "aud"},
			id:     Identity{Subject: "s", Claims: map[string]string{"iss": "forged", "exp": "0", "aud": "x", "iat": "0", "sub": "x", "lp_sdes": "kept: no SDEs", "nonce": "n"}},
		},
		"more claims than the writer keeps on its stack": {client: snapshot.Client{Audience: "a", StaticClaims: manyClaims("s", 20)}, id: Identity{Subject: "s", Claims: manyClaims("i", 20)}},
		"SDE fields nil or holding nil values": {client: snapshot.Client{Audience: "a"}, id: Identity{Subject: "s"},
			sdes: []lpsdes.SDE{{Type: "ctmrinfo"}, {Type: "personal", Fields: map[string]any{"contacts": []any(nil), "age": map[string]any(nil), "x": nil, "b": true}}}},
		"escapes": {
			client: snapshot.Client{Audience: "a\"b\\c"},
			id:     Identity{Subject: "tab\there\nnul\x00 \b\f\r \u2028\u2029 é 😀 \x7f", Claims: map[string]string{"k\u2029<>&": "bad \xff utf8 \xe2\x80", "\x01": "\x1f"}},
		},
	}
	for name, tc := range cases {
		got, err := appendPayload(nil, snap, &tc.client, tc.id, 1800000000, 1800003600, tc.sdes, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := marshalled(t, snap, &tc.client, tc.id, 1800000000, 1800003600, tc.sdes)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// A value json.Marshal refuses (a NaN in a template built from decoded values) refuses the token,
// as it did when json.Marshal wrote the payload, instead of signing a null in its place.
func TestPayloadRefusesWhatJSONRefuses(t *testing.T) {
	t.Parallel()
	sdes := []lpsdes.SDE{{Type: "ctmrinfo", Fields: map[string]any{"balance": math.NaN()}}}
	if _, err := appendPayload(nil, &snapshot.Snapshot{}, &snapshot.Client{}, Identity{Subject: "s"}, 1, 2, sdes, nil); err == nil {
		t.Fatal("a NaN was written into a payload")
	}
}

func manyClaims(prefix string, n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("%s%02d", prefix, i)] = fmt.Sprint(i)
	}
	m["shared"] = prefix
	return m
}

func FuzzPayloadString(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&", "\b\f\r\n\t", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é😀", `"\`, "\xe2\x80"} {
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
		if got, err := appendValue(nil, v); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
