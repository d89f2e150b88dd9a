package lpauthctl

import (
	"context"
	"crypto"
	"encoding/base64"
	"fmt"
	"io"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// finding is one line of check's report.
type finding struct {
	problem bool
	subject string
	text    string
}

func good(subject, format string, a ...any) finding {
	return finding{subject: subject, text: fmt.Sprintf(format, a...)}
}

func bad(subject, format string, a ...any) finding {
	return finding{problem: true, subject: subject, text: fmt.Sprintf(format, a...)}
}

// runCheck fetches discovery and the JWKS as LivePerson does and compares them with the
// cluster: the issuer, the endpoints, and each key.
func runCheck(ctx context.Context, c *cli, args []string) error {
	ts := &v1alpha1.TokenServer{}
	if err := c.get(ctx, args[0], ts); err != nil {
		return err
	}
	sk := &v1alpha1.SigningKey{}
	if err := c.get(ctx, ts.Spec.SigningKeyRef.Name, sk); err != nil {
		return err
	}
	base, err := c.base(ts)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Checking TokenServer %s/%s from outside, at %s\n", ts.Namespace, ts.Name, base)
	var fs []finding
	if doc, err := c.discovery(ctx, base); err != nil {
		fs = append(fs, bad("discovery", "%s: %v", base+endpoints.DiscoveryPath, err))
	} else {
		fs = append(fs, good("discovery", "%s", base+endpoints.DiscoveryPath))
		fs = append(fs, compareDiscovery(ts.Spec.Issuer, doc)...)
	}
	if set, err := c.jwks(ctx, base); err != nil {
		fs = append(fs, bad("JWKS", "%s: %v", base+endpoints.JWKSPath, err))
	} else {
		fs = append(fs, good("JWKS", "%s: %d key(s)", base+endpoints.JWKSPath, len(set.Keys)))
		fs = append(fs, compareKeys(sk, set)...)
	}
	n := writeFindings(c.stdout, fs)
	if n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	fmt.Fprintln(c.stdout, "No problem found: LivePerson sees what the cluster holds.")
	return nil
}

// writeFindings writes the report and returns how many problems it has.
func writeFindings(w io.Writer, fs []finding) int {
	n := 0
	width := 0
	for _, f := range fs {
		width = max(width, len(f.subject))
	}
	for _, f := range fs {
		mark := "ok     "
		if f.problem {
			mark = "PROBLEM"
			n++
		}
		fmt.Fprintf(w, "  %s  %-*s  %s\n", mark, width, f.subject, printable(f.text))
	}
	return n
}

// compareDiscovery checks the discovery document against the issuer the cluster holds: the
// issuer exactly (LivePerson compares iss byte for byte) and the endpoints built from it.
func compareDiscovery(issuer string, doc discoveryDoc) []finding {
	want := endpoints.For(issuer)
	fs := []finding{}
	if doc.Issuer == issuer {
		fs = append(fs, good("issuer", "%q is spec.issuer", doc.Issuer))
	} else {
		fs = append(fs, bad("issuer", "%q is served, spec.issuer is %q: another server answers for this issuer, or a proxy rewrites it; LivePerson's JWT issuer must be spec.issuer", doc.Issuer, issuer))
	}
	for _, e := range []struct{ name, got, want string }{
		{"jwks_uri", doc.JWKSURI, want.JWKS},
		{"token_endpoint", doc.TokenEndpoint, want.Token},
		{"authorization_endpoint", doc.AuthorizationEndpoint, want.Authorization},
	} {
		if e.got == e.want {
			fs = append(fs, good(e.name, "%s", e.got))
		} else {
			fs = append(fs, bad(e.name, "%q is served, %q expected", e.got, e.want))
		}
	}
	return fs
}

// compareKeys checks the published keys against the SigningKey's: every key the cluster holds
// (Next, Active, Retired) must be published with the same public key, and nothing else may be:
// neither a key the cluster no longer holds nor, above all, a revoked one or a private part.
func compareKeys(sk *v1alpha1.SigningKey, set jose.JSONWebKeySet) []finding {
	var fs []finding
	if sk.Status.ActiveKeyID == "" {
		fs = append(fs, bad("SigningKey", "%s has no Active key: nothing signs (kubectl describe sk %s)", sk.Name, sk.Name))
	}
	for _, k := range sk.Status.Keys {
		subject := string(k.State) + " key"
		published := set.Key(k.KeyID)
		switch {
		case len(published) == 0 && k.State == v1alpha1.KeyActive:
			fs = append(fs, bad(subject, "%s signs every token, but is NOT published: LivePerson cannot verify any token", k.KeyID))
		case len(published) == 0 && k.State == v1alpha1.KeyNext:
			fs = append(fs, bad(subject, "%s is NOT published: relying parties will not know it when it starts signing", k.KeyID))
		case len(published) == 0:
			fs = append(fs, bad(subject, "%s is NOT published: tokens it signed fail verification before they expire", k.KeyID))
		case !sameKey(published[0], k.PublicJWK):
			fs = append(fs, bad(subject, "%s is published with another public key than the cluster holds", k.KeyID))
		default:
			fs = append(fs, good(subject, "%s published", k.KeyID))
		}
	}
	for _, jwk := range set.Keys {
		const subject = "published key"
		held := slices.ContainsFunc(sk.Status.Keys, func(k v1alpha1.KeyStatus) bool { return k.KeyID == jwk.KeyID })
		published := printable(jwk.KeyID) // the server's: printed as seen, never obeyed
		switch {
		case !jwk.IsPublic() && keys.IsKID(jwk.KeyID):
			fs = append(fs, bad(subject, "%s is a PRIVATE key: revoke it now (kubectl lpauth revoke %s -- %s)", published, sk.Name, jwk.KeyID))
		case !jwk.IsPublic():
			fs = append(fs, bad(subject, "%s is a PRIVATE key: revoke the key it is (kubectl lpauth revoke %s -- KID)", published, sk.Name))
		case slices.Contains(sk.Status.RevokedKeyIDs, jwk.KeyID):
			fs = append(fs, bad(subject, "%s is REVOKED, and still published: a stale cache, or another server answers for this issuer", published))
		case !held:
			fs = append(fs, bad(subject, "%s: the cluster no longer holds it: a stale cache, or another server answers for this issuer", published))
		}
		if kid := thumbprint(jwk); kid != jwk.KeyID {
			fs = append(fs, bad(subject, "%s is not the key's RFC 7638 thumbprint (%s)", published, kid))
		}
	}
	return fs
}

// thumbprint is a JWK's RFC 7638 SHA-256 thumbprint, base64url: our kids.
func thumbprint(jwk jose.JSONWebKey) string {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "none: " + err.Error()
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// sameKey reports whether a published JWK is the public key status records (JSON). Status
// without the JWK (older operators) cannot tell: the kid, a thumbprint, already matched.
func sameKey(published jose.JSONWebKey, statusJWK string) bool {
	if statusJWK == "" {
		return true
	}
	var held jose.JSONWebKey
	if err := held.UnmarshalJSON([]byte(statusJWK)); err != nil {
		return false
	}
	return thumbprint(held) == thumbprint(published)
}
