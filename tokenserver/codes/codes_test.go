package codes

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var now = time.Unix(1_800_000_000, 0)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func payload() Payload {
	return Payload{ID: "id-1", ClientID: "lp-client", Subject: "user-1", Expiry: now.Add(2 * time.Minute).Unix(),
		RedirectURI: "https://liveperson.net", CodeChallenge: "abc", CodeChallengeMethod: "S256"}
}

func TestSealOpen(t *testing.T) {
	s, _ := NewSealer(key(1))
	code, err := s.Seal(payload())
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(code, "+/=:") {
		t.Errorf("code %q is not URL-safe", code)
	}
	got, err := s.Open(code, now)
	if err != nil || !reflect.DeepEqual(got, payload()) {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, payload())
	}
	if strings.Contains(code, "user-1") {
		t.Error("the code shows its subject in clear")
	}
}

func TestOpenRefuses(t *testing.T) {
	s, _ := NewSealer(key(1))
	code, _ := s.Seal(payload())
	raw, _ := base64.RawURLEncoding.DecodeString(code)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	other, _ := NewSealer(key(2))
	for _, tc := range []struct {
		name, code string
		s          *Sealer
		at         time.Time
		want       string
	}{
		{"expired", code, s, now.Add(2 * time.Minute), "expired"},
		{"tampered", base64.RawURLEncoding.EncodeToString(flipped), s, now, "does not authenticate"},
		{"unknown key", code, other, now, "unknown key"},
		{"not base64", "!!!", s, now, "malformed"},
		{"too short", "AAAA", s, now, "malformed"},
		{"too long", strings.Repeat("A", MaxCodeLength+1), s, now, "too long"},
	} {
		_, err := tc.s.Open(tc.code, tc.at)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want ErrInvalid containing %q", tc.name, err, tc.want)
		}
	}
}

func TestPreviousKeyStillOpens(t *testing.T) {
	old, _ := NewSealer(key(1))
	code, _ := old.Seal(payload())
	rotated, _ := NewSealer(key(2), key(1))
	if _, err := rotated.Open(code, now); err != nil {
		t.Errorf("a code sealed with the previous key: %v", err)
	}
	fresh, _ := rotated.Seal(payload())
	if _, err := old.Open(fresh, now); err == nil {
		t.Error("the old ring opened a code sealed with the new key")
	}
}

func TestSealBoundsPayload(t *testing.T) {
	s, _ := NewSealer(key(1))
	p := payload()
	p.Claims = []byte(`"` + strings.Repeat("a", MaxPayload) + `"`)
	if _, err := s.Seal(p); err == nil {
		t.Error("Seal accepted an oversize payload")
	}
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

// FuzzOpen: codes come from the network; Open must never panic nor accept what it did not seal.
func FuzzOpen(f *testing.F) {
	s, _ := NewSealer(key(1))
	code, _ := s.Seal(payload())
	f.Add(code)
	f.Add("")
	f.Add(code[:20])
	f.Fuzz(func(t *testing.T, in string) {
		// Only one payload is ever sealed under this key (by every fuzz process alike), so an
		// accepted code that says anything else was forged.
		p, err := s.Open(in, now)
		if err == nil && !reflect.DeepEqual(p, payload()) {
			t.Fatalf("Open accepted a code it did not seal: %q -> %+v", in, p)
		}
	})
}

func TestSealedValuesAreBoundToTheirPurposeAndExpiry(t *testing.T) {
	t.Parallel()
	s, err := NewSealer(bytes.Repeat([]byte{3}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	type login struct{ Client, State string }
	sealed, err := s.SealValue("lpauth-login-v1", login{"c", "s"}, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got login
	if err := s.OpenValue("lpauth-login-v1", sealed, now, &got); err != nil || got != (login{"c", "s"}) {
		t.Fatalf("open = %+v, %v", got, err)
	}
	if err := s.OpenValue("lpauth-session-v1", sealed, now, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("opened for another purpose: %v", err)
	}
	if _, err := s.Open(sealed, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a login request opened as a code: %v", err)
	}
	if err := s.OpenValue("lpauth-login-v1", sealed, now.Add(time.Minute), &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("opened at its expiry: %v", err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-2] ^= 1
	if err := s.OpenValue("lpauth-login-v1", string(tampered), now, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered value opened: %v", err)
	}
}
