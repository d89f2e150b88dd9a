package controllers

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/api/redirect"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Pure functions for LivePersonAuthClient: validation, console values, conditions.

// DefaultJSMethodName is the web page function LivePerson calls by default.
const DefaultJSMethodName = "lpGetAuthenticationToken"

// validateClientSpec checks what CEL cannot: redirect URIs and the lp_sdes template. It uses the
// same validators as the token server, so what the operator accepts the server serves.
func validateClientSpec(spec v1alpha1.LivePersonAuthClientSpec) error {
	var errs []error
	if _, err := redirect.Parse(spec.RedirectURIs); err != nil {
		errs = append(errs, err)
	}
	if len(spec.IDToken.LPSdes) > 0 {
		raw := []byte("[")
		for i, item := range spec.IDToken.LPSdes {
			if i > 0 {
				raw = append(raw, ',')
			}
			raw = append(raw, item.Raw...)
		}
		raw = append(raw, ']')
		if _, err := lpsdes.Parse(raw); err != nil {
			errs = append(errs, fmt.Errorf("idToken.lpSdes: %w", err))
		}
	}
	return errors.Join(errs...)
}

// consoleInputs are the facts the LivePerson console values are made of.
type consoleInputs struct {
	issuer         string
	clientID       string
	secretRef      *v1alpha1.SecretKeyRef
	activeSPKI     string
	hasPopoutLogin bool
}

// livePersonConsole builds every value of LivePerson's "Consumer Identity Provider" form.
func livePersonConsole(spec v1alpha1.LivePersonAuthClientSpec, in consoleInputs) *v1alpha1.LivePersonConsole {
	urls := endpoints.For(in.issuer)
	c := &v1alpha1.LivePersonConsole{
		AuthenticationType: string(spec.Flow),
		JWTIssuer:          in.issuer,
		ClientID:           in.clientID,
		JSMethodName:       DefaultJSMethodName,
	}
	if in.hasPopoutLogin {
		c.AuthenticationEndpoint = urls.Authorization
	}
	if spec.Flow == v1alpha1.FlowCode {
		c.TokenEndpoint = urls.Token
		c.ClientSecretRef = in.secretRef
		c.PKCE = "Disabled"
		if spec.PKCE == v1alpha1.PKCERequired {
			c.PKCE = "Enabled"
		}
	}
	if spec.PublicKeyMode == v1alpha1.PublicKeyPEM {
		c.CertificateType, c.JWTPublicKey = "JWT Public Key", in.activeSPKI
	} else {
		c.CertificateType, c.JWKSEndpoint = "JWKS Endpoint", urls.JWKS
	}
	return c
}

// setClientReady: True with the console values complete; otherwise reason and message say why.
// A PEM-mode client whose console holds a key that does not sign is not Ready: LivePerson
// rejects its tokens.
func setClientReady(c *v1alpha1.LivePersonAuthClient, reason string, err error) {
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: c.Generation}
	if console := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired); err == nil && console != nil &&
		console.Status == metav1.ConditionTrue && (console.Reason == v1alpha1.ReasonConsoleKeyOutdated || console.Reason == v1alpha1.ReasonConsoleKeyAhead) {
		reason, err = console.Reason, errors.New(console.Message)
	}
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reason, err.Error()
	} else {
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		cond.Message = "Ready: paste status.livePersonConsole into LivePerson's console"
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
}

// setConsoleUpdateCondition (PEM mode only): True while the SigningKey's rotation waits for the
// Next key to be pasted into LivePerson's console and acknowledged by this client.
func setConsoleUpdateCondition(c *v1alpha1.LivePersonAuthClient, sk *v1alpha1.SigningKey) {
	if c.Spec.PublicKeyMode != v1alpha1.PublicKeyPEM || sk == nil {
		meta.RemoveStatusCondition(&c.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
		return
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionConsoleUpdateRequired, ObservedGeneration: c.Generation}
	next, active, held := keyOfState(sk, v1alpha1.KeyNext), sk.Status.ActiveKeyID, c.Status.AcknowledgedKeyID
	switch {
	case held != "" && active != "" && held == next:
		// The console already holds the Next key; it signs once every PEM-mode client of the
		// SigningKey has acknowledged it. Until then LivePerson rejects this client's tokens.
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonConsoleKeyAhead
		cond.Message = fmt.Sprintf("LivePerson's console holds the Next key %s, which signs once every PEM-mode client of SigningKey %s has acknowledged it; until then LivePerson rejects this client's tokens (signed by %s). Acknowledge it on the other PEM-mode clients, or rotate now with `kubectl annotate sk/%s %s=%snow --overwrite`",
			held, sk.Name, active, sk.Name, v1alpha1.AnnotationRotate, v1alpha1.ForceRotatePrefix)
	case held != "" && active != "" && held != active:
		// A forced rotation or a revoke changed the key that signs: every token fails
		// verification at LivePerson until the console holds the new key.
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonConsoleKeyOutdated
		cond.Message = fmt.Sprintf("LivePerson's console holds key %s but key %s signs: LivePerson rejects every token until you paste this key into its \"JWT Public Key\" field, then run "+
			"`kubectl annotate lpac/%s %s=%s --overwrite`: %s",
			held, active, c.Name, v1alpha1.AnnotationConsoleUpdated, active, sk.Status.ActivePublicKey)
	case rotationHeldForConsole(sk) && next != "" && held != next:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonNewKeyPending
		cond.Message = fmt.Sprintf("Rotation waits for LivePerson's console. Paste this key into its \"JWT Public Key\" field, then run "+
			"`kubectl annotate lpac/%s %s=%s --overwrite` to switch signing to it: %s",
			c.Name, v1alpha1.AnnotationConsoleUpdated, next, sk.Status.NextPublicKey)
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonConsoleUpToDate
		cond.Message = "LivePerson's console holds the key that signs (status.livePersonConsole.jwtPublicKey)"
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
}

// setClientTimingCondition: a retired key must stay in the JWKS as long as the tokens it signed
// live, plus clock skew, or LivePerson fails to verify tokens signed just before a rotation.
func setClientTimingCondition(c *v1alpha1.LivePersonAuthClient, sk *v1alpha1.SigningKey) {
	if sk == nil {
		return
	}
	lifetime := c.Spec.IDToken.Lifetime.Duration
	if lifetime == 0 {
		lifetime = v1alpha1.DefaultTokenLifetime
	}
	need, retain := lifetime+v1alpha1.ClockSkew, sk.Spec.Rotation.RetainAfterRetire.Duration
	cond := metav1.Condition{Type: v1alpha1.ConditionTimingValid, ObservedGeneration: c.Generation, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled,
		Message: fmt.Sprintf("Retired keys stay published %s, longer than tokens live (%s + %s skew)", retain, lifetime, v1alpha1.ClockSkew)}
	if retain < need {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonRetainTooShort
		cond.Message = fmt.Sprintf("Tokens live %s (idToken.lifetime) but SigningKey %s keeps a retired key published only %s: tokens signed just before a rotation fail verification at LivePerson before they expire; set its spec.rotation.retainAfterRetire to at least %s or shorten idToken.lifetime",
			lifetime, sk.Name, retain, need)
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
}

func rotationHeldForConsole(sk *v1alpha1.SigningKey) bool {
	r := meta.FindStatusCondition(sk.Status.Conditions, v1alpha1.ConditionRotating)
	return r != nil && r.Reason == v1alpha1.ReasonRotationHeld
}

func keyOfState(sk *v1alpha1.SigningKey, state v1alpha1.KeyState) string {
	for _, k := range sk.Status.Keys {
		if k.State == state {
			return k.KeyID
		}
	}
	return ""
}
