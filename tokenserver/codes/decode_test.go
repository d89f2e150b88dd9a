package codes

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// payloads are what Seal writes, from plain to every field with the characters JSON escapes.
var payloads = []Payload{
	{ID: "id", ClientID: "c"},
	{ID: "AAAAAAAAAAAAAAAAAAAAAA", ClientID: "lp-code-client", Subject: "cust-8f14e45f", Expiry: 1800000120, Issued: 1800000000,
		Claims: json.RawMessage(`{"email":"ada@brand.example","given_name":"Ada"}`), LPSdes: json.RawMessage(`[{"info":{"balance":-1.50e3,"ctype":"gold \u0026 \"vip\""},"type":"ctmrinfo"}]`),
		SDEsWritten: true, RedirectURI: "https://liveperson.net", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256"},
	{ID: "id", ClientID: "c", Subject: "é 😀 \u2028", RedirectURI: "https://x.example/cb?a=1&b=<2>", Expiry: -5, Claims: json.RawMessage(`{"k":"]}[{"}`)},
	{ID: "id", ClientID: "c", Subject: "tab\there \"quoted\" back\\slash \x01", Claims: json.RawMessage(`{}`), LPSdes: json.RawMessage(`[]`)},
}

// TestDecodePayloadReadsWhatSealWrites: the usual payloads are read without encoding/json, and
// as encoding/json reads them; payloads with escapes may be declined, never misread.
func TestDecodePayloadReadsWhatSealWrites(t *testing.T) {
	t.Parallel()
	for i, want := range payloads {
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodePayload(b)
		if !ok && !bytes.ContainsRune(b, '\\') {
			t.Errorf("payload %d, without escapes, declined: %s", i, b)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Errorf("payload %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// A value nested deeper than encoding/json reads a whole payload (10,000 levels) may be valid
// on its own: the fast reader declines deep values rather than accept what encoding/json refuses.
func TestDecodePayloadDeclinesDeepValues(t *testing.T) {
	t.Parallel()
	b := []byte(`{"jti":"a","cid":"c","sdes":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`)
	if _, ok := decodePayload(b); ok {
		t.Fatal("accepted a payload encoding/json refuses (too deep)")
	}
	if err := json.Unmarshal(b, &Payload{}); err == nil {
		t.Fatal("encoding/json now reads it: the test no longer shows anything")
	}
	shallow := []byte(`{"jti":"a","cid":"c","clm":{"a":[[{"b":[1]}]]}}`)
	if _, ok := decodePayload(shallow); !ok {
		t.Fatalf("declined a shallow value: %s", shallow)
	}
}

// FuzzDecodePayload: whatever decodePayload accepts, encoding/json reads the same way.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range payloads {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"jti":"a","jti":"b"}`, `{"JTI":"a"}`, `{"exp":01}`, `{"exp":1.0}`, `{"exp":-}`, `{"exp":99999999999999999999}`,
		`{"clm":null}`, `{"clm":"x"}`, `{"clm":{"a":[}]}`, `{"sdes":[{"a":"\"]"}]}`, `{"sdesw":true}`, `{"sdesw":tru}`, `{"jti":"a"} `, `{"jti":"\u0041"}`, "{\"jti\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodePayload(b)
		if !ok {
			return
		}
		var want Payload
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodePayload accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	})
}

// BenchmarkDecodePayload compares decodePayload with encoding/json on a LivePerson-like payload.
//
//	go test -run '^$' -bench DecodePayload -benchmem ./tokenserver/codes/
func BenchmarkDecodePayload(b *testing.B) {
	raw, _ := json.Marshal(payloads[1])
	b.Run("decodePayload", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, ok := decodePayload(raw); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var p Payload
			if err := json.Unmarshal(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
