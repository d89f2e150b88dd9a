package snapshot_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/branding"
	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// ES256 keys are cheap to make; the snapshot does not care about the algorithm.
func keySecret(t *testing.T, states ...v1alpha1.KeyState) *corev1.Secret {
	t.Helper()
	var set []keys.Key
	for _, st := range states {
		k, err := keys.Generate(v1alpha1.ES256, 0)
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, keys.Key{JWK: k, State: st, CreatedAt: now.Add(-time.Hour), ActivatesAt: now.Add(-time.Hour)})
	}
	data, err := keys.Encode(set)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keys-signing-keys"}, Data: data}
}

func inputs(t *testing.T) snapshot.Inputs {
	ts := &v1alpha1.TokenServer{ObjectMeta: metav1.ObjectMeta{Name: "ts"}, Spec: v1alpha1.TokenServerSpec{
		Issuer: "https://auth.example.com/lp", SigningKeyRef: v1alpha1.LocalObjectReference{Name: "keys"}}}
	return snapshot.Inputs{
		TokenServer: ts,
		KeySecret:   keySecret(t, v1alpha1.KeyNext, v1alpha1.KeyActive, v1alpha1.KeyRetired),
		Credentials: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ts-credentials"}, Data: map[string][]byte{
			credentials.CodeKeyKey: bytes.Repeat([]byte{1}, 32), credentials.IssueAPITokenKey: []byte("issue-token\n")}},
		BrandSecrets: map[string]*corev1.Secret{
			"good-client": {Data: map[string][]byte{v1alpha1.ClientSecretKey: []byte("G4tY9kP2wQ7xN1vR6mL3hZ8cB5jD0fSa")}},
		},
		Now: now,
	}
}

func client(name string, mutate func(*v1alpha1.LivePersonAuthClient)) v1alpha1.LivePersonAuthClient {
	c := v1alpha1.LivePersonAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
		v1alpha1.AnnotationGeneratedClientID: "id-" + name}},
		Spec: v1alpha1.LivePersonAuthClientSpec{TokenServerRef: v1alpha1.LocalObjectReference{Name: "ts"}, AccountID: "123",
			RedirectURIs: []string{"https://va.liveperson.net/callback"}}}
	if mutate != nil {
		mutate(&c)
	}
	return c
}

func TestBuildServesGoodClientsAndReportsBrokenOnes(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	in.Clients = []v1alpha1.LivePersonAuthClient{
		client("good", nil),
		client("other-server", func(c *v1alpha1.LivePersonAuthClient) { c.Spec.TokenServerRef.Name = "elsewhere" }),
		client("no-id-yet", func(c *v1alpha1.LivePersonAuthClient) { c.Annotations = nil }),
		client("no-secret", nil),
		client("bad-redirect", func(c *v1alpha1.LivePersonAuthClient) { c.Spec.RedirectURIs = []string{"not a url"} }),
		client("bad-sdes", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.IDToken.LPSdes = []apiextensionsv1.JSON{{Raw: []byte(`{"type":"nonsense"}`)}}
		}),
		client("no-enc-keys", func(c *v1alpha1.LivePersonAuthClient) {
			c.Spec.Flow = v1alpha1.FlowImplicit
			c.Spec.Encryption = &v1alpha1.EncryptionSpec{KeysSecretRef: v1alpha1.LocalObjectReference{Name: "missing"}}
		}),
		client("duplicate", func(c *v1alpha1.LivePersonAuthClient) {
			// Younger than "good" (created later), so it loses the id although its name sorts first.
			c.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
			c.Spec.ClientID = "id-good"
			c.Spec.ClientSecretRef = &v1alpha1.SecretKeyRef{Name: "good-client", Key: v1alpha1.ClientSecretKey}
		}),
		client("implicit", func(c *v1alpha1.LivePersonAuthClient) { c.Spec.Flow = v1alpha1.FlowImplicit }),
	}
	s, problems, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	// "good" reads the generated Secret good-client.
	if got := len(s.Clients); got != 2 {
		t.Fatalf("served %d clients, want 2 (good, implicit): %v", got, s.Clients)
	}
	good := s.Clients["id-good"]
	if good == nil || good.SecretHash != sha256.Sum256([]byte("G4tY9kP2wQ7xN1vR6mL3hZ8cB5jD0fSa")) || good.Lifetime != time.Hour || good.Audience != "id-good" || good.Flow != v1alpha1.FlowCode {
		t.Fatalf("good client = %+v", good)
	}
	if imp := s.Clients["id-implicit"]; imp == nil || imp.HasSecret {
		t.Fatalf("implicit client = %+v, want no secret", imp)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{"bad-redirect", "bad-sdes", "duplicate", "no-enc-keys", "no-id-yet", "no-secret"}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want one for each of %q", got, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], "LivePersonAuthClient "+w+": ") {
			t.Errorf("problem %d = %q, want one about %s", i, got[i], w)
		}
	}
}

func TestBuildPublishesEveryKeyAndSignsWithTheActiveOne(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	s, _, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS.Body, &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want Next, Active and Retired", len(jwks.Keys))
	}
	found := false
	for _, k := range jwks.Keys {
		if k.D != "" {
			t.Fatalf("JWKS publishes a private key: %s", k.Kid)
		}
		found = found || k.Kid == s.SigningKeyID
	}
	if !found {
		t.Fatalf("signing kid %s is not in the JWKS", s.SigningKeyID)
	}
	if s.ActiveKeyAge != time.Hour || s.CodeTTL != 120*time.Second {
		t.Fatalf("ActiveKeyAge=%v CodeTTL=%v", s.ActiveKeyAge, s.CodeTTL)
	}
	if len(s.IssueAPITokens) != 1 || string(s.IssueAPITokens[0]) != "issue-token" {
		t.Fatalf("issue API tokens = %q, want the trimmed credential", s.IssueAPITokens)
	}
	var disc map[string]any
	if err := json.Unmarshal(s.Discovery.Body, &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != in.TokenServer.Spec.Issuer || disc["token_endpoint"] != "https://auth.example.com/lp/token" {
		t.Fatalf("discovery = %v", disc)
	}
	// The ETag follows the content: same inputs, same tag; a changed key set, a new tag.
	again, _, _ := snapshot.Build(in)
	if again.JWKS.ETag != s.JWKS.ETag || again.Discovery.ETag != s.Discovery.ETag {
		t.Fatal("ETags differ between two builds of the same inputs")
	}
	in.KeySecret = keySecret(t, v1alpha1.KeyActive)
	changed, _, _ := snapshot.Build(in)
	if changed.JWKS.ETag == s.JWKS.ETag {
		t.Fatal("ETag unchanged after the key set changed")
	}
}

func TestBuildFailsOnlyWhenNothingCanBeServed(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		mutate func(*snapshot.Inputs)
		want   string
	}{
		"no token server":    {func(in *snapshot.Inputs) { in.TokenServer = nil }, "no TokenServer"},
		"no key secret":      {func(in *snapshot.Inputs) { in.KeySecret = nil }, "signing key Secret"},
		"no active key":      {func(in *snapshot.Inputs) { in.KeySecret = keySecret(t, v1alpha1.KeyNext) }, "no active key"},
		"no credentials":     {func(in *snapshot.Inputs) { in.Credentials = nil }, "credentials Secret is missing"},
		"short code key":     {func(in *snapshot.Inputs) { in.Credentials.Data[credentials.CodeKeyKey] = []byte("short") }, "ts-credentials"},
		"no issue API token": {func(in *snapshot.Inputs) { delete(in.Credentials.Data, credentials.IssueAPITokenKey) }, "issueAPIToken"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := inputs(t)
			tc.mutate(&in)
			_, _, err := snapshot.Build(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHolderSwapsWholeSnapshots(t *testing.T) {
	t.Parallel()
	var h snapshot.Holder
	if h.Snapshot() != nil {
		t.Fatal("a new holder has a snapshot")
	}
	a, b := &snapshot.Snapshot{Issuer: "a"}, &snapshot.Snapshot{Issuer: "b"}
	h.Store(a)
	h.Store(b)
	if h.Snapshot() != b {
		t.Fatal("holder does not return the last stored snapshot")
	}
}

func TestBrandingKeepsOnlySafeValues(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	in.TokenServer.Spec.Login = &v1alpha1.LoginSpec{
		TrustedHeaders:       &v1alpha1.TrustedHeadersLogin{UserHeader: "X-User", TrustedProxyCIDRs: []string{"10.0.0.0/8"}},
		BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "look"},
	}
	in.ConfigMaps = map[string]*corev1.ConfigMap{"look": {Data: map[string]string{
		"title": "Brand", "logoURL": "javascript:alert(1)", "primaryColor": "red;}body{background:url(https://evil.example)", "backgroundColor": "#ABCDEF",
	}}}
	s, problems, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Branding != (branding.Branding{Title: "Brand", BackgroundColor: "#ABCDEF"}) {
		t.Fatalf("branding = %+v", s.Branding)
	}
	if len(problems) != 2 {
		t.Fatalf("problems = %v, want the logo and the colour", problems)
	}
	if s.Login == nil || s.Login.TrustedHeaders == nil || s.Login.TrustedHeaders.Proxies[0].String() != "10.0.0.0/8" {
		t.Fatalf("login = %+v", s.Login)
	}
	delete(in.ConfigMaps, "look")
	if _, problems, _ := snapshot.Build(in); len(problems) != 1 || !strings.Contains(problems[0].String(), "missing") {
		t.Fatalf("a missing branding ConfigMap: %v", problems)
	}
}

func TestHtpasswdAcceptsOnlyBcrypt(t *testing.T) {
	t.Parallel()
	users, err := snapshot.ParseHtpasswd([]byte("# demo users\nada:$2y$10$abcdefghijklmnopqrstuuKq8Jx9pE0C5J3l8m0V2r7nH6y1Wq3e\n\nbob:$2b$10$abcdefghijklmnopqrstuuKq8Jx9pE0C5J3l8m0V2r7nH6y1Wq3e\n"))
	if err != nil || len(users) != 2 || !strings.HasPrefix(string(users["ada"]), "$2a$") {
		t.Fatalf("users = %q, %v", users, err)
	}
	for name, data := range map[string]string{
		"MD5-crypt": "ada:$apr1$abc$def\n", "SHA-1": "ada:{SHA}abc=\n", "plain": "ada:secret\n", "no colon": "ada\n",
		"duplicate": "ada:$2y$10$x\nada:$2y$10$y\n", "empty": "# nobody\n",
	} {
		if _, err := snapshot.ParseHtpasswd([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Regression: with two clients claiming one client id, the served one depended on the order the
// cache listed them in, which changes from one rebuild to the next.
func TestClientIDIsServedForTheOlderClientWhateverTheOrder(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	older := client("real", func(c *v1alpha1.LivePersonAuthClient) {
		c.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
		c.Spec.ClientID = "shared"
		c.Spec.Flow = v1alpha1.FlowImplicit
	})
	younger := client("attacker", func(c *v1alpha1.LivePersonAuthClient) {
		c.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
		c.Spec.ClientID = "shared"
		c.Spec.Flow = v1alpha1.FlowImplicit
		c.Spec.RedirectURIs = []string{"https://evil.example/steal"}
	})
	for i := range 40 {
		in.Clients = []v1alpha1.LivePersonAuthClient{older, younger}
		if i%2 == 1 {
			in.Clients = []v1alpha1.LivePersonAuthClient{younger, older}
		}
		s, _, err := snapshot.Build(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Clients["shared"]; got == nil || got.Name != "real" || got.Redirects.Allowed("https://evil.example/steal") {
			t.Fatalf("build %d: client id served for %+v, want the older client real", i, got)
		}
	}
}

// A younger client with an owned id is not served even while the owner cannot be (its Secret
// recreated, its keys missing): the id is reserved for the oldest claimant before building.
func TestClientIDStaysReservedWhileItsOwnerIsBroken(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	in.Clients = []v1alpha1.LivePersonAuthClient{
		client("real", func(c *v1alpha1.LivePersonAuthClient) {
			c.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
			c.Spec.ClientID = "shared" // code flow, and its Secret is missing
		}),
		client("attacker", func(c *v1alpha1.LivePersonAuthClient) {
			c.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
			c.Spec.ClientID = "shared"
			c.Spec.Flow = v1alpha1.FlowImplicit
			c.Spec.RedirectURIs = []string{"https://evil.example/steal"}
		}),
	}
	s, problems, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Clients["shared"]; got != nil {
		t.Fatalf("client id served for %s while its owner is broken, want nobody", got.Name)
	}
	if len(problems) != 2 {
		t.Errorf("problems = %v, want one for each client", problems)
	}
}

// A key Secret restored from a backup taken before a revoke still holds the revoked key: the
// token server never publishes it nor signs with it, even before the operator repairs the Secret.
func TestRevokedKeysAreNeverServed(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	set, _ := keys.Decode(in.KeySecret.Data)
	var active, retired string
	for _, k := range set {
		switch k.State {
		case v1alpha1.KeyActive:
			active = k.ID()
		case v1alpha1.KeyRetired:
			retired = k.ID()
		}
	}
	in.KeySecret.Annotations = map[string]string{v1alpha1.AnnotationRevokedKeys: retired}
	s, _, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.JWKS.Body, []byte(retired)) {
		t.Errorf("JWKS publishes key %s, on the key Secret's deny-list", retired)
	}
	in.KeySecret.Annotations[v1alpha1.AnnotationRevokedKeys] = retired + "," + active
	if s, _, err := snapshot.Build(in); err == nil {
		t.Errorf("built a snapshot signing with %s (on the deny-list): kid %s", active, s.SigningKeyID)
	}
}

// brandingInputs are inputs whose TokenServer is branded by a ConfigMap with data.
func brandingInputs(t *testing.T, data map[string]string) snapshot.Inputs {
	t.Helper()
	in := inputs(t)
	in.TokenServer.Spec.Login = &v1alpha1.LoginSpec{
		TrustedHeaders:       &v1alpha1.TrustedHeadersLogin{UserHeader: "X-User", TrustedProxyCIDRs: []string{"10.0.0.0/8"}},
		BrandingConfigMapRef: &v1alpha1.LocalObjectReference{Name: "look"},
	}
	in.ConfigMaps = map[string]*corev1.ConfigMap{"look": {Data: data}}
	return in
}

// TestBrandingRefusesUnsafeText: a value that is too long, not UTF-8, or holds a control
// character is refused and reported, and the page keeps its default; so is a key the pages do
// not use (a misspelt key would otherwise go unnoticed).
func TestBrandingRefusesUnsafeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, value string }{
		{"title", "Brand\nCo"},
		{"title", "Brand\x00"},
		{"title", strings.Repeat("t", 101)},
		{"text.signInTitle", "Connexion\r\nen cours"},
		{"text.signInTitle", "Con\u0085nexion"}, // NEL, a C1 control
		{"text.signInPrompt", strings.Repeat("p", 301)},
		{"text.username", "\xffNom"},
		{"text.password", "Mot\tde passe"},
		{"text.signInButton", strings.Repeat("é", 101)},
		{"text.wrongCredentials", "\x1b[31mFaux"},
		{"text.tooManyAttempts", strings.Repeat("t", 301)},
		{"text.linkNotValidTitle", strings.Repeat("l", 101)},
		{"text.linkNotValid", "Lien\x07"},
		{"text.expiredTitle", "Expir\x7fé"},
		{"text.expired", "Expiré\x00"},
		{"text.unavailableTitle", "In\x0bdisponible"},
		{"text.unavailable", "\xc3"},
		{"text.notAllowedTitle", "Refus\x1fé"},
		{"text.notAllowed", strings.Repeat("n", 301)},
		{"text.failedTitle", "Éch\x0cec"},
		{"text.failed", "Échec\x00"},
		{"lang", "fr<script>"},
		{"lang", "f"},
		{"lang", "en_US"},
		{"lang", "fr-" + strings.Repeat("a", 40)},
		{"dir", "up"},
		{"text.signinButton", "Se connecter"},
		{"colour", "#fff"},
	} {
		s, problems, err := snapshot.Build(brandingInputs(t, map[string]string{tc.key: tc.value}))
		if err != nil {
			t.Fatal(err)
		}
		if s.Branding != (branding.Branding{}) {
			t.Errorf("%s=%q: got branding %+v, want the defaults", tc.key, tc.value, s.Branding)
		}
		if len(problems) != 1 || !strings.Contains(problems[0].String(), tc.key) {
			t.Errorf("%s=%q: got problems %v, want one naming %s", tc.key, tc.value, problems, tc.key)
		}
	}
}

// TestBrandingText: every text key sets its own field, bounds count characters (not bytes),
// and what the ConfigMap leaves out is the English default.
func TestBrandingText(t *testing.T) {
	t.Parallel()
	keys := []string{
		"text.signInTitle", "text.signInPrompt", "text.username", "text.password", "text.signInButton",
		"text.wrongCredentials", "text.tooManyAttempts",
		"text.linkNotValidTitle", "text.linkNotValid", "text.expiredTitle", "text.expired",
		"text.unavailableTitle", "text.unavailable", "text.notAllowedTitle", "text.notAllowed",
		"text.failedTitle", "text.failed",
	}
	data := map[string]string{"lang": "ar-EG", "dir": "rtl"}
	for _, k := range keys {
		data[k] = " « " + k + " »\n" // a YAML block scalar ends in a newline
	}
	data["text.signInButton"] = strings.Repeat("é", 100)
	s, problems, err := snapshot.Build(brandingInputs(t, data))
	if err != nil || len(problems) != 0 {
		t.Fatalf("got %v %v, want no problems", err, problems)
	}
	if s.Branding.Lang != "ar-EG" || s.Branding.Dir != "rtl" {
		t.Errorf("got lang %q dir %q, want ar-EG rtl", s.Branding.Lang, s.Branding.Dir)
	}
	got := reflect.ValueOf(s.Branding.Text)
	if got.NumField() != len(keys) {
		t.Fatalf("Text has %d fields, the ConfigMap %d text keys: each field needs a key", got.NumField(), len(keys))
	}
	seen := map[string]string{}
	for i := range got.NumField() {
		name, v := got.Type().Field(i).Name, got.Field(i).String()
		if prev, dup := seen[v]; dup || v == "" || strings.TrimSpace(v) != v {
			t.Errorf("Text.%s = %q (also Text.%s's), want its own key's value, trimmed", name, v, prev)
		}
		seen[v] = name
	}
	if s.Branding.Text.SignInButton != strings.Repeat("é", 100) {
		t.Errorf("got button %q, want the 100 characters", s.Branding.Text.SignInButton)
	}

}

// Regression: the token server accepted a previous issue-API credential or code key as long as
// it was in the Secret, so an operator that was down extended every overlap without end.
func TestPreviousCredentialsEndOnTimeEvenWithoutTheOperator(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		until string
		want  int
	}{
		{now.Add(time.Hour).Format(time.RFC3339), 2},    // still in its overlap
		{now.Add(-time.Second).Format(time.RFC3339), 1}, // over: only the current one
	} {
		in := inputs(t)
		in.Credentials.Data[credentials.PreviousIssueAPITokenKey] = []byte("previous-token")
		in.Credentials.Data[credentials.PreviousCodeKeyKey] = bytes.Repeat([]byte{2}, 32)
		in.Credentials.Annotations = map[string]string{
			v1alpha1.AnnotationPreviousIssueAPITokenUntil: tc.until, v1alpha1.AnnotationPreviousCodeKeyUntil: tc.until,
		}
		s, _, err := snapshot.Build(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(s.IssueAPITokens); got != tc.want {
			t.Errorf("until %s: %d issue-API credentials accepted, want %d", tc.until, got, tc.want)
		}
	}
}

// Regression: a snapshot that could not be rebuilt (another object broken) kept accepting a
// credential cut because it leaked. WithCredentials replaces only the credentials.
func TestCredentialsAreReplacedEvenWhenNothingElseCanBe(t *testing.T) {
	t.Parallel()
	in := inputs(t)
	in.Credentials.Data[credentials.PreviousIssueAPITokenKey] = []byte("leaked")
	s, _, err := snapshot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.IssueAPITokens) != 2 {
		t.Fatalf("before: %d credentials, want the current and the previous", len(s.IssueAPITokens))
	}
	cut := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ts-credentials"}, Data: map[string][]byte{
		credentials.CodeKeyKey: bytes.Repeat([]byte{2}, 32), credentials.IssueAPITokenKey: []byte("fresh")}}
	next, err := s.WithCredentials(cut, in.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.IssueAPITokens) != 1 || string(next.IssueAPITokens[0]) != "fresh" {
		t.Errorf("after: credentials %q, want only the fresh one", next.IssueAPITokens)
	}
	if reflect.ValueOf(next.Clients).Pointer() != reflect.ValueOf(s.Clients).Pointer() || next.Signer != s.Signer {
		t.Error("everything but the credentials must stay as it was")
	}
	if len(s.IssueAPITokens) != 2 {
		t.Error("the snapshot being served was modified")
	}
	if _, err := s.WithCredentials(nil, in.Now); err == nil {
		t.Error("no credentials Secret: want an error (the previous snapshot stays)")
	}
}
