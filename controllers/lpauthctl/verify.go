package lpauthctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// expectedToken is what LivePerson expects of a client's id_token (api/LIVEPERSON.md).
type expectedToken struct {
	issuer, subject string
	audience        string
	// encrypted: the client has spec.encryption, so tokens are JWEs for LivePerson's key.
	encrypted bool
}

// clockSkew is how far LivePerson's clock may be from ours (LIVEPERSON.md assumes 60 s).
const clockSkew = 60 * time.Second

// verifyToken checks a token as LivePerson does: RS256 only, a kid the JWKS publishes, the
// signature, iss exactly, exp and iat in seconds. It returns a one-line summary for the report.
// An encrypted token can be opened by LivePerson only: its header is checked, not its content.
func verifyToken(token string, set jose.JSONWebKeySet, want expectedToken, now time.Time) (string, error) {
	if strings.Count(token, ".") == 4 {
		if !want.encrypted {
			return "", errors.New("the token is encrypted (JWE), but the client has no spec.encryption")
		}
		jwe, err := jose.ParseEncrypted(token, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM, jose.A128CBC_HS256})
		if err != nil {
			return "", fmt.Errorf("not a JWE LivePerson can open (RSA-OAEP-256; A256GCM or A128CBC-HS256): %w", err)
		}
		return fmt.Sprintf("a JWE for LivePerson's key %q (enc %s, cty %s): only LivePerson can decrypt it, so the signed token inside is not checked here",
			jwe.Header.KeyID, printable(fmt.Sprint(jwe.Header.ExtraHeaders["enc"])), printable(fmt.Sprint(jwe.Header.ExtraHeaders["cty"]))), nil
	}
	if want.encrypted {
		return "", errors.New("the client has spec.encryption, but the token is not encrypted")
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", fmt.Errorf("not an RS256 JWT (LivePerson accepts only RS256): %w", err)
	}
	kid := tok.Headers[0].KeyID
	if kid == "" {
		return "", errors.New("no kid in the header: LivePerson looks the key up by kid")
	}
	published := set.Key(kid)
	if len(published) == 0 {
		return "", fmt.Errorf("signed with key %s, which the JWKS does not publish: LivePerson cannot verify it", printable(kid))
	}
	var claims jwt.Claims
	var all map[string]any
	if err := tok.Claims(published[0].Key, &claims, &all); err != nil {
		return "", fmt.Errorf("the signature does not verify with the published key %s: %w", printable(kid), err)
	}
	switch {
	case claims.Issuer != want.issuer:
		return "", fmt.Errorf("iss is %q, but LivePerson's JWT issuer (spec.issuer) is %q", claims.Issuer, want.issuer)
	case claims.Subject != want.subject:
		return "", fmt.Errorf("sub is %q, %q was asked for", claims.Subject, want.subject)
	case claims.Expiry == nil:
		return "", errors.New("no exp")
	case claims.IssuedAt == nil:
		return "", errors.New("no iat")
	case claims.Expiry.Time().Before(now.Add(-clockSkew)):
		return "", fmt.Errorf("expired at %s", claims.Expiry.Time().UTC().Format(time.RFC3339))
	case claims.Expiry.Time().Sub(now) > 48*time.Hour:
		return "", fmt.Errorf("exp is %s away: milliseconds instead of seconds? LivePerson reads seconds", claims.Expiry.Time().Sub(now).Round(time.Hour))
	case claims.IssuedAt.Time().After(now.Add(clockSkew)):
		return "", fmt.Errorf("iat is %s in the future", claims.IssuedAt.Time().Sub(now).Round(time.Second))
	}
	if want.audience != "" && !slices.Contains([]string(claims.Audience), want.audience) {
		// LivePerson does not check aud, but the token server sets it to the client's.
		return "", fmt.Errorf("aud is %q, %q expected", []string(claims.Audience), want.audience)
	}
	names := slices.Sorted(maps.Keys(all))
	for i, n := range names {
		names[i] = printable(n)
	}
	return fmt.Sprintf("RS256 signature verifies with published key %s; iss is spec.issuer, sub %q, expires in %s; claims: %s",
		printable(kid), claims.Subject, dur(claims.Expiry.Time().Sub(now).Round(time.Second)), strings.Join(names, " ")), nil
}
