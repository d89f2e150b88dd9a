package keys

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB, alg v1alpha1.SigningAlgorithm, state v1alpha1.KeyState) Key {
	t.Helper()
	jwk, err := Generate(alg, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Key{JWK: jwk, State: state, CreatedAt: now, ActivatesAt: now.Add(time.Hour)}
}

func TestGenerateSetsThumbprintKid(t *testing.T) {
	for _, alg := range []v1alpha1.SigningAlgorithm{v1alpha1.RS256, v1alpha1.PS256, v1alpha1.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k := newKey(t, alg, v1alpha1.KeyActive)
			pub := k.JWK.Public()
			pub.KeyID = ""
			want, _ := withThumbprint(pub)
			if k.ID() != want.KeyID || len(k.ID()) != 43 {
				t.Errorf("kid = %q, want the 43-character base64url SHA-256 thumbprint %q", k.ID(), want.KeyID)
			}
			if k.Algorithm() != alg || !k.CanSign() {
				t.Errorf("Algorithm() = %s, CanSign() = %v; want %s, true", k.Algorithm(), k.CanSign(), alg)
			}
		})
	}
	if _, err := Generate(v1alpha1.RS256, 1024); err == nil {
		t.Error("Generate(RS256, 1024) succeeded, want an error")
	}
	if _, err := Generate("HS256", 0); err == nil {
		t.Error("Generate(HS256) succeeded, want an error")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	set := []Key{newKey(t, v1alpha1.ES256, v1alpha1.KeyActive), newKey(t, v1alpha1.ES256, v1alpha1.KeyNext)}
	set[1].CreatedAt = now.Add(time.Minute)
	retired := newKey(t, v1alpha1.ES256, v1alpha1.KeyRetired)
	retired.CreatedAt, retired.RemoveAt = now.Add(-time.Hour), now.Add(24*time.Hour)
	retired.JWK = retired.JWK.Public() // a recovered key: public part only
	set = append(set, retired)

	data, err := Encode(set)
	if err != nil {
		t.Fatal(err)
	}
	got, problems := Decode(data)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(got) != 3 || got[0].ID() != retired.ID() || got[1].ID() != set[0].ID() || got[2].ID() != set[1].ID() {
		t.Fatalf("Decode returned %d keys in the wrong order", len(got))
	}
	if got[0].CanSign() || !got[1].CanSign() {
		t.Errorf("CanSign: retired %v, active %v; want false, true", got[0].CanSign(), got[1].CanSign())
	}
	if !got[0].RemoveAt.Equal(retired.RemoveAt) || !got[1].ActivatesAt.Equal(set[0].ActivatesAt) {
		t.Errorf("timestamps changed in the round trip")
	}
}

func TestDecodeKeepsWhatItCanRead(t *testing.T) {
	good := newKey(t, v1alpha1.ES256, v1alpha1.KeyActive)
	other := newKey(t, v1alpha1.ES256, v1alpha1.KeyNext)
	data, _ := Encode([]Key{good, other})

	// A hand edit that swaps one entry's key for another's, keeping the old name.
	swapped := data[DataKey(other.ID())]
	publicActive := good
	publicActive.JWK = good.JWK.Public()
	publicActiveData, _ := Encode([]Key{publicActive})

	data[DataKey(other.ID())] = data[DataKey(good.ID())]
	data["key-garbage.json"] = []byte("{not json")
	data["README"] = []byte("hello")
	data[DataKey(publicActive.ID())+"x"] = swapped
	data["key-public-active.json"] = publicActiveData[DataKey(publicActive.ID())]

	got, problems := Decode(data)
	if len(got) != 1 || got[0].ID() != good.ID() {
		t.Fatalf("Decode kept %d keys, want only the intact one", len(got))
	}
	want := []string{"README: not a key entry", "key-garbage.json: unreadable", "does not match the key's thumbprint"}
	joined := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("problems do not mention %q:\n%s", w, joined)
		}
	}
	if len(problems) != 5 {
		t.Errorf("got %d problems, want 5:\n%s", len(problems), joined)
	}
}

func TestJWKSHoldsOnlyPublicKeys(t *testing.T) {
	set := []Key{newKey(t, v1alpha1.RS256, v1alpha1.KeyActive), newKey(t, v1alpha1.ES256, v1alpha1.KeyNext)}
	doc, err := JWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
		if strings.Contains(string(doc), private+":") {
			t.Errorf("JWKS contains private member %s", private)
		}
	}
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Key(set[0].ID())) != 1 || parsed.Key(set[0].ID())[0].Algorithm != "RS256" {
		t.Errorf("JWKS has no RS256 key %s", set[0].ID())
	}
}

func TestSPKIIsOneLineDER(t *testing.T) {
	k := newKey(t, v1alpha1.RS256, v1alpha1.KeyActive)
	line, err := SPKI(k)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(line, "\n-") {
		t.Fatalf("SPKI %q is not one base64 line", line)
	}
	der, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		t.Errorf("SPKI does not parse: %v", err)
	}
}

// FuzzDecode: Secret data may be hand-edited; Decode must never panic and must only return keys
// whose kid is their thumbprint.
func FuzzDecode(f *testing.F) {
	data, _ := Encode([]Key{newKey(f, v1alpha1.ES256, v1alpha1.KeyActive)})
	for name, v := range data {
		f.Add(name, v)
	}
	f.Add("key-x.json", []byte(`{"state":"Active","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`))
	f.Add("key-.json", []byte(`{"state":"Retired","jwk":null}`))
	f.Fuzz(func(t *testing.T, name string, raw []byte) {
		got, _ := Decode(map[string][]byte{name: raw})
		for _, k := range got {
			want, err := withThumbprint(k.JWK)
			if err != nil || want.KeyID != k.ID() {
				t.Fatalf("Decode returned key %q whose thumbprint is %q", k.ID(), want.KeyID)
			}
		}
	})
}

// The revoke annotation is user input: only kid-shaped values reach the deny-list, so junk can
// neither grow it nor push real kids off it.
func TestParseKIDsKeepsOnlyKids(t *testing.T) {
	kid := strings.Repeat("A", 42) + "_"
	kids, invalid := ParseKIDs(" " + kid + ",," + kid + ", not-a-kid ," + strings.Repeat("x", 5000))
	if len(kids) != 1 || kids[0] != kid {
		t.Errorf("kids = %q, want [%s]", kids, kid)
	}
	if len(invalid) != 2 {
		t.Errorf("invalid = %d values, want 2", len(invalid))
	}
	list := AddRevoked(nil, "junk", kid)
	for i := range MaxRevoked + 10 {
		list = AddRevoked(list, fmt.Sprintf("%043d", i))
	}
	if len(list) != MaxRevoked || slices.Contains(list, "junk") {
		t.Errorf("deny-list holds %d entries (junk kept: %v), want %d", len(list), slices.Contains(list, "junk"), MaxRevoked)
	}
}
