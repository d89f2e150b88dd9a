package lpauthctl

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Pure formatting: what status and console print, tested without a cluster.

// field is one labelled line.
type field struct{ label, value string }

// writeFields writes fields as aligned "label  value" lines under indent.
func writeFields(w io.Writer, indent string, fields []field) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.label))
	}
	for _, f := range fields {
		fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, f.label, f.value)
	}
}

// hiddenSecret stands for the client secret when --show-secret was not given.
func hiddenSecret(ref *v1alpha1.SecretKeyRef) string {
	where := "its Secret"
	if ref != nil {
		where = fmt.Sprintf("Secret %s, key %s", ref.Name, ref.Key)
	}
	return "(hidden: --show-secret prints it; " + where + ")"
}

// consoleFields are the values of LivePerson's "Consumer Identity Provider" form, in the order
// of its boxes, from the operator's status.livePersonConsole. secret is what to show in the
// Client Secret box: the secret itself, or where it is.
func consoleFields(c *v1alpha1.LivePersonConsole, secret string) []field {
	code := c.AuthenticationType == string(v1alpha1.FlowCode)
	fs := []field{{"Authentication type", c.AuthenticationType}}
	if code {
		fs = append(fs, field{"PKCE", c.PKCE})
	}
	fs = append(fs, field{"JWT issuer", c.JWTIssuer})
	if c.AuthenticationEndpoint != "" {
		fs = append(fs, field{"Authentication endpoint", c.AuthenticationEndpoint})
	} else {
		fs = append(fs, field{"Authentication endpoint", "(leave empty: the TokenServer has no spec.login, so the pop-out window cannot log in)"})
	}
	if code {
		fs = append(fs, field{"Token endpoint", c.TokenEndpoint})
	}
	fs = append(fs, field{"Client ID", c.ClientID})
	if code {
		fs = append(fs, field{"Client secret", secret})
	}
	fs = append(fs, field{"Certificate type", c.CertificateType})
	if c.JWTPublicKey != "" {
		fs = append(fs, field{"JWT public key", c.JWTPublicKey})
	} else {
		fs = append(fs, field{"JWKS endpoint", c.JWKSEndpoint})
	}
	return append(fs, field{"JS method name", c.JSMethodName})
}

// when is a time as a person reads it: UTC, to the second, and how far from now.
func when(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return stamp(t) + " (" + relative(t.Time, now) + ")"
}

// stamp is a time in a table: UTC, to the minute.
func stamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > time.Second:
		return "in " + duration.HumanDuration(d)
	case d < -time.Second:
		return duration.HumanDuration(-d) + " ago"
	default:
		return "now"
	}
}

// condition is one condition as "True (Reason)", with its message when it is not the status
// wanted; "unknown (not reported yet)" when absent.
func condition(conds []metav1.Condition, typ string, want metav1.ConditionStatus) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "unknown (not reported yet)"
	}
	s := fmt.Sprintf("%s (%s)", c.Status, c.Reason)
	if c.Status != want && c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// writeKeys writes a SigningKey's keys as a table: state and every time of their lifecycle.
func writeKeys(w io.Writer, indent string, sk *v1alpha1.SigningKey) {
	if len(sk.Status.Keys) == 0 {
		fmt.Fprintf(w, "%s(no keys yet)\n", indent)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sKID\tSTATE\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tLEAVES THE JWKS\n", indent)
	for _, k := range sk.Status.Keys {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\n", indent, k.KeyID, k.State,
			stamp(&k.CreatedAt), stamp(k.ActivatesAt), stamp(k.RetiresAt), stamp(k.RemoveAt))
	}
	_ = tw.Flush()
}

// rotationPolicy is a SigningKey's spec in one line.
func rotationPolicy(sk *v1alpha1.SigningKey) string {
	r := sk.Spec.Rotation
	alg := string(sk.Spec.Algorithm)
	if alg == "" {
		alg = string(v1alpha1.RS256)
	}
	parts := []string{alg}
	if sk.Spec.RSAKeySize != nil {
		parts[0] += fmt.Sprintf(" %d bits", *sk.Spec.RSAKeySize)
	}
	parts = append(parts, "rotates every "+dur(r.Every.Duration), "each key published "+dur(r.PublishAhead.Duration)+" before it signs",
		"kept "+dur(r.RetainAfterRetire.Duration)+" after")
	if r.Paused {
		parts = append(parts, "scheduled rotation PAUSED")
	}
	return strings.Join(parts, ", ")
}

// short is the start of a kid, enough to tell keys apart in a sentence.
func short(kid string) string {
	if len(kid) > 12 {
		return kid[:12] + "…"
	}
	return kid
}

// dur is a duration as a spec writes it: 2160h, not 2160h0m0s.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
