package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestLivePersonConsole(t *testing.T) {
	ref := &v1alpha1.SecretKeyRef{Name: "s", Key: "clientSecret"}
	in := consoleInputs{issuer: "https://auth.example", clientID: "cid", secretRef: ref, activeSPKI: "MIIB", hasPopoutLogin: true}
	for _, tc := range []struct {
		name string
		spec v1alpha1.LivePersonAuthClientSpec
		in   consoleInputs
		want v1alpha1.LivePersonConsole
	}{{
		name: "code flow, JWKS, PKCE required, pop-out login",
		spec: v1alpha1.LivePersonAuthClientSpec{Flow: v1alpha1.FlowCode, PKCE: v1alpha1.PKCERequired, PublicKeyMode: v1alpha1.PublicKeyJWKS},
		in:   in,
		want: v1alpha1.LivePersonConsole{AuthenticationType: "Code", PKCE: "Enabled", JWTIssuer: "https://auth.example",
			AuthenticationEndpoint: "https://auth.example/authorize", TokenEndpoint: "https://auth.example/token",
			ClientID: "cid", ClientSecretRef: ref, CertificateType: "JWKS Endpoint",
			JWKSEndpoint: "https://auth.example/.well-known/jwks.json", JSMethodName: DefaultJSMethodName},
	}, {
		name: "implicit flow, PEM, no pop-out login",
		spec: v1alpha1.LivePersonAuthClientSpec{Flow: v1alpha1.FlowImplicit, PublicKeyMode: v1alpha1.PublicKeyPEM},
		in:   consoleInputs{issuer: "https://auth.example", clientID: "cid", activeSPKI: "MIIB"},
		want: v1alpha1.LivePersonConsole{AuthenticationType: "Implicit", JWTIssuer: "https://auth.example", ClientID: "cid",
			CertificateType: "JWT Public Key", JWTPublicKey: "MIIB", JSMethodName: DefaultJSMethodName},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, *livePersonConsole(tc.spec, tc.in)); diff != "" {
				t.Errorf("livePersonConsole (-want +got):\n%s", diff)
			}
		})
	}
}
