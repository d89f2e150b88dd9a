package lpauthctl

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func TestConsoleFieldsFollowLivePersonsForm(t *testing.T) {
	code := &v1alpha1.LivePersonConsole{AuthenticationType: "Code", PKCE: "Enabled", JWTIssuer: "https://auth.brand.example",
		AuthenticationEndpoint: "https://auth.brand.example/authorize", TokenEndpoint: "https://auth.brand.example/token",
		ClientID: "lp-abc", CertificateType: "JWKS Endpoint", JWKSEndpoint: "https://auth.brand.example/.well-known/jwks.json",
		JSMethodName: "lpGetAuthenticationToken"}
	implicitPEM := &v1alpha1.LivePersonConsole{AuthenticationType: "Implicit", JWTIssuer: "https://auth.brand.example",
		ClientID: "lp-def", CertificateType: "JWT Public Key", JWTPublicKey: "MIIBIjAN", JSMethodName: "lpGetAuthenticationToken"}
	for _, tc := range []struct {
		name string
		in   *v1alpha1.LivePersonConsole
		want string
	}{
		{"code flow, JWKS", code, `
  Authentication type      Code
  PKCE                     Enabled
  JWT issuer               https://auth.brand.example
  Authentication endpoint  https://auth.brand.example/authorize
  Token endpoint           https://auth.brand.example/token
  Client ID                lp-abc
  Client secret            s3cret
  Certificate type         JWKS Endpoint
  JWKS endpoint            https://auth.brand.example/.well-known/jwks.json
  JS method name           lpGetAuthenticationToken
`},
		// No secret, no token endpoint, no PKCE in the implicit flow; no pop-out login without spec.login.
		{"implicit flow, PEM, no pop-out login", implicitPEM, `
  Authentication type      Implicit
  JWT issuer               https://auth.brand.example
  Authentication endpoint  (leave empty: the TokenServer has no spec.login, so the pop-out window cannot log in)
  Client ID                lp-def
  Certificate type         JWT Public Key
  JWT public key           MIIBIjAN
  JS method name           lpGetAuthenticationToken
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeFields(&b, "  ", consoleFields(tc.in, "s3cret"))
			if diff := cmp.Diff(strings.TrimPrefix(tc.want, "\n"), b.String()); diff != "" {
				t.Errorf("console (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHiddenSecretSaysWhereItIs(t *testing.T) {
	got := hiddenSecret(&v1alpha1.SecretKeyRef{Name: "brand-liveperson-client", Key: "clientSecret"})
	if want := "(hidden: --show-secret prints it; Secret brand-liveperson-client, key clientSecret)"; got != want {
		t.Errorf("hiddenSecret = %q, want %q", got, want)
	}
}

func TestTimes(t *testing.T) {
	now := time.Date(2026, 12, 2, 11, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { mt := metav1.NewTime(now.Add(d)); return &mt }
	for _, tc := range []struct {
		t    *metav1.Time
		want string
	}{
		{nil, "-"},
		{at(90 * 24 * time.Hour), "2027-03-02 11:30Z (in 90d)"},
		{at(-3 * time.Minute), "2026-12-02 11:27Z (3m ago)"},
		{at(0), "2026-12-02 11:30Z (now)"},
	} {
		if got := when(tc.t, now); got != tc.want {
			t.Errorf("when(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	for d, want := range map[time.Duration]string{2160 * time.Hour: "2160h", 25 * time.Hour: "25h", 90 * time.Minute: "1h30m", 120 * time.Second: "2m", 90 * time.Second: "1m30s"} {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestConditionsShowWhatIsNews(t *testing.T) {
	conds := []metav1.Condition{
		{Type: "Ready", Status: "True", Reason: "Reconciled", Message: "all good"},
		{Type: "Degraded", Status: "False", Reason: "Reconciled"},
		{Type: "IssuerUnique", Status: "False", Reason: "IssuerConflict", Message: "ts/other has the same issuer"},
		{Type: "ConsoleUpdateRequired", Status: "True", Reason: "NewKeyPending", Message: "paste the key"},
	}
	got := conditionFields(conds, "Ready", "Available")
	want := []field{
		{"Ready", "True (Reconciled)"},
		{"Available", "unknown (not reported yet)"},
		{"IssuerUnique", "False (IssuerConflict): ts/other has the same issuer"},
		{"ConsoleUpdateRequired", "True (NewKeyPending): paste the key"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(field{})); diff != "" {
		t.Errorf("conditionFields (-want +got):\n%s", diff)
	}
}

func TestRevokeValueAddsToTheList(t *testing.T) {
	kid := func(c byte) string { return strings.Repeat(string(c), 43) }
	a, b, c := kid('a'), kid('b'), kid('c')
	for _, tc := range []struct {
		name             string
		current          string
		revoked, add     []string
		want, wantErrSub string
	}{
		{"empty", "", nil, []string{a}, a, ""},
		{"added after the kids listed", a, []string{a}, []string{b, c}, a + "," + b + "," + c, ""},
		{"each once", a + "," + b, nil, []string{b, a}, a + "," + b, ""},
		{"what is not a kid was reported by the operator, and is left out", "typo, " + a, nil, []string{b}, a + "," + b, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := revokeValue(tc.current, tc.revoked, tc.add)
			if err != nil || got != tc.want {
				t.Errorf("revokeValue(%q, %v, %v) = %q, %v; want %q", tc.current, tc.revoked, tc.add, got, err, tc.want)
			}
		})
	}

	// 32 listed: handled kids make room; unhandled ones never do.
	var listed []string
	for i := range 32 {
		listed = append(listed, strings.Repeat("x", 41)+string(rune('A'+i/26))+string(rune('a'+i%26)))
	}
	got, err := revokeValue(strings.Join(listed, ","), listed[:5], []string{a})
	if err != nil || strings.Contains(got, listed[0]) || !strings.Contains(got, listed[5]) || !strings.HasSuffix(got, a) || strings.Count(got, ",") != 31 {
		t.Errorf("a full list with handled kids: %q, %v", got, err)
	}
	if _, err := revokeValue(strings.Join(listed, ","), nil, []string{a}); err == nil || !strings.Contains(err.Error(), "at most 32") {
		t.Errorf("a full list of unhandled kids: err = %v, want one saying at most 32", err)
	}
}

func TestFlagsGoAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCmd  string
		wantRest []string
	}{
		{[]string{"status"}, "status", []string{}},
		{[]string{"-n", "brand-auth", "status", "brand"}, "status", []string{"-n", "brand-auth", "brand"}},
		{[]string{"--namespace=brand-auth", "check", "brand"}, "check", []string{"--namespace=brand-auth", "brand"}},
		{[]string{"--kubeconfig", "/k", "--context", "c", "try", "x"}, "try", []string{"--kubeconfig", "/k", "--context", "c", "x"}},
		{[]string{"--help"}, "help", nil},
	} {
		cmd, rest, err := splitCommand(tc.args)
		if err != nil || cmd != tc.wantCmd || !cmp.Equal(rest, tc.wantRest, cmp.Comparer(func(a, b []string) bool { return strings.Join(a, " ") == strings.Join(b, " ") })) {
			t.Errorf("splitCommand(%q) = %q, %q, %v; want %q, %q", tc.args, cmd, rest, err, tc.wantCmd, tc.wantRest)
		}
	}
	if _, _, err := splitCommand([]string{"-n", "x"}); err == nil {
		t.Error("splitCommand without a command: no error")
	}

	var o options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	commonFlags(fs, &o)
	consoleFlags(fs, &o)
	pos, err := parseInterspersed(fs, []string{"brand-liveperson", "-n", "brand-auth", "--show-secret"}, nil)
	if err != nil || !cmp.Equal(pos, []string{"brand-liveperson"}) || o.namespace != "brand-auth" || !o.showSecret {
		t.Errorf("parseInterspersed: %q, %v, %+v", pos, err, o)
	}
}

func TestTheRedirectURIPresentedIsOneTheClientAllows(t *testing.T) {
	for _, tc := range []struct {
		entries []string
		want    string
	}{
		{nil, "https://liveperson.net"},
		{[]string{"prefix:https://lpcdn.lpsnmedia.net/le_unified_window/", "https://app.brand.example/cb"}, "https://app.brand.example/cb"},
		{[]string{"prefix:https://lpcdn.lpsnmedia.net/le_unified_window/"}, "https://lpcdn.lpsnmedia.net/le_unified_window/"},
	} {
		if got := firstRedirect(tc.entries); got != tc.want {
			t.Errorf("firstRedirect(%q) = %q, want %q", tc.entries, got, tc.want)
		}
	}
}

func TestRotateValuesAreNewEachTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 11, 30, 0, 1, time.UTC)
	if a, b := rotateValue(now, false), rotateValue(now.Add(time.Nanosecond), false); a == b || !strings.HasPrefix(a, "kubectl-lpauth-2026-12-02T11:30:00") {
		t.Errorf("rotateValue: %q then %q", a, b)
	}
	if got := rotateValue(now, true); !strings.HasPrefix(got, v1alpha1.ForceRotatePrefix) {
		t.Errorf("rotateValue(force) = %q, want the %q prefix", got, v1alpha1.ForceRotatePrefix)
	}
}
