package workload_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func TestNewCredentialsAreFreshLabelledAndOwned(t *testing.T) {
	t.Parallel()
	ts := server("brand", nil)
	a, err := workload.NewCredentials(ts, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := workload.NewCredentials(ts, rand.Reader)
	if len(a.Data[credentials.CodeKeyKey]) != credentials.CodeKeySize || len(a.Data[credentials.IssueAPITokenKey]) != 43 {
		t.Fatalf("code key %d bytes, issue token %d bytes", len(a.Data[credentials.CodeKeyKey]), len(a.Data[credentials.IssueAPITokenKey]))
	}
	if bytes.Equal(a.Data[credentials.CodeKeyKey], b.Data[credentials.CodeKeyKey]) || bytes.Equal(a.Data[credentials.IssueAPITokenKey], b.Data[credentials.IssueAPITokenKey]) {
		t.Fatal("two servers got the same credentials")
	}
	if a.Name != "brand-credentials" || a.Labels[v1alpha1.LabelTokenServerReads] != "true" || a.OwnerReferences[0].UID != ts.UID {
		t.Fatalf("credentials Secret meta = %+v", a.ObjectMeta)
	}
	if _, err := codes.NewSealer(a.Data[credentials.CodeKeyKey]); err != nil {
		t.Fatalf("the token server cannot use the code key: %v", err)
	}
	// A rotate request present at creation is already satisfied.
	ts.Annotations = map[string]string{v1alpha1.AnnotationRotateCredentials: "r1"}
	c, _ := workload.NewCredentials(ts, rand.Reader)
	if rot, _ := workload.RotateCredentials(c, "r1", t0, overlaps, rand.Reader); rot.Rotated {
		t.Fatal("a new Secret rotated for a request made before it existed")
	}
}

// overlaps are the defaults of a TokenServer without a landing page: the code key for the
// login form's 10 minutes, the issue-API credential for a day.
var overlaps = workload.Overlaps{CodeKey: 10 * time.Minute, IssueAPI: 24 * time.Hour}

func TestRotationKeepsEachPreviousValueForItsOwnOverlap(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	oldKey, oldToken := s.Data[credentials.CodeKeyKey], s.Data[credentials.IssueAPITokenKey]

	rot, err := workload.RotateCredentials(s, "2026-11-25", t0, overlaps, rand.Reader)
	if err != nil || !rot.Rotated || len(rot.Cut) != 0 {
		t.Fatalf("rotate: got %+v, %v; want rotated, nothing cut", rot, err)
	}
	if !bytes.Equal(s.Data[credentials.PreviousCodeKeyKey], oldKey) || !bytes.Equal(s.Data[credentials.PreviousIssueAPITokenKey], oldToken) {
		t.Fatal("the previous values must stay, so codes already issued still redeem and backends have time to switch")
	}
	if bytes.Equal(s.Data[credentials.CodeKeyKey], oldKey) || bytes.Equal(s.Data[credentials.IssueAPITokenKey], oldToken) {
		t.Fatal("rotation did not replace the current values")
	}
	for a, want := range map[string]string{
		v1alpha1.AnnotationPreviousCodeKeyUntil:       "2026-11-25T09:10:00Z",
		v1alpha1.AnnotationPreviousIssueAPITokenUntil: "2026-11-26T09:00:00Z",
	} {
		if got := s.Annotations[a]; got != want {
			t.Errorf("%s: got %q, want %q", a, got, want)
		}
	}
	if rot, _ := workload.RotateCredentials(s, "2026-11-25", t0.Add(time.Hour), overlaps, rand.Reader); rot.Rotated {
		t.Fatal("the same request rotated twice")
	}

	// Before the code key's overlap ends nothing is removed; the wait is for the earlier end.
	if removed, wait := workload.ExpirePrevious(s, t0.Add(time.Minute)); len(removed) != 0 || wait != 9*time.Minute+time.Second {
		t.Fatalf("one minute in: got removed %v, wait %v; want nothing, 9m1s", removed, wait)
	}
	// The code key goes with its annotation; the issue-API credential stays for its own overlap.
	removed, wait := workload.ExpirePrevious(s, t0.Add(10*time.Minute))
	if !slices.Equal(removed, []string{credentials.PreviousCodeKeyKey}) || wait != 23*time.Hour+50*time.Minute+time.Second {
		t.Fatalf("at the code key's end: got removed %v, wait %v; want the code key, 23h50m1s", removed, wait)
	}
	if _, ok := s.Annotations[v1alpha1.AnnotationPreviousCodeKeyUntil]; ok {
		t.Error("the code key's expiry outlived the code key")
	}
	if !bytes.Equal(s.Data[credentials.PreviousIssueAPITokenKey], oldToken) {
		t.Fatal("the previous issue-API credential went with the code key")
	}
	if _, ok := s.Data[credentials.RetiredIssueAPITokenDigestsKey]; ok {
		t.Fatal("a credential still accepted is listed as retired")
	}

	removed, wait = workload.ExpirePrevious(s, t0.Add(24*time.Hour))
	if !slices.Equal(removed, []string{credentials.PreviousIssueAPITokenKey}) {
		t.Fatalf("at the credential's end: got removed %v, want the issue-API credential", removed)
	}
	if _, ok := s.Annotations[v1alpha1.AnnotationPreviousIssueAPITokenUntil]; ok {
		t.Error("the credential's expiry outlived the credential")
	}
	// Its digest is kept, for 30 days, so the token server can say it was replaced.
	retired := credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey])
	if len(retired) != 1 || retired[0].SHA256 != sha256.Sum256(oldToken) || !retired[0].Retired.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("retired list: got %+v, want the old credential's digest, retired now", retired)
	}
	if wait != workload.RetiredDigestsKept+time.Second {
		t.Errorf("wait: got %v, want the retired digest's %v (+1s)", wait, workload.RetiredDigestsKept)
	}
	assertNotInTheClear(t, s, oldToken)

	if removed, wait := workload.ExpirePrevious(s, t0.Add(24*time.Hour+workload.RetiredDigestsKept)); len(removed) != 0 || wait != 0 {
		t.Fatalf("30 days on: got removed %v, wait %v; want nothing pending", removed, wait)
	}
	if _, ok := s.Data[credentials.RetiredIssueAPITokenDigestsKey]; ok {
		t.Error("the retired list outlived its 30 days")
	}
}

// The two overlaps are independent: a short credential overlap ends before the code key's.
func TestAShortCredentialOverlapEndsFirst(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	if _, err := workload.RotateCredentials(s, "r1", t0, workload.Overlaps{CodeKey: 45 * time.Minute, IssueAPI: time.Minute}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	removed, wait := workload.ExpirePrevious(s, t0.Add(time.Minute))
	if !slices.Equal(removed, []string{credentials.PreviousIssueAPITokenKey}) || wait != 44*time.Minute+time.Second {
		t.Fatalf("got removed %v, wait %v; want the credential, 44m1s", removed, wait)
	}
	if _, ok := s.Data[credentials.PreviousCodeKeyKey]; !ok {
		t.Fatal("the previous code key went with the credential, while what it sealed still lives")
	}
}

// Secrets written by operators before the two expiries carry one annotation for both values.
func TestTheOldSingleExpiryStillAppliesToBoth(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	oldToken := []byte("an-older-operators-previous-credential-0123456789")
	s.Data[credentials.PreviousCodeKeyKey] = bytes.Repeat([]byte{7}, credentials.CodeKeySize)
	s.Data[credentials.PreviousIssueAPITokenKey] = oldToken
	s.Annotations = map[string]string{v1alpha1.AnnotationPreviousUntil: t0.Add(2 * time.Minute).Format(time.RFC3339)}

	if removed, wait := workload.ExpirePrevious(s, t0.Add(time.Minute)); len(removed) != 0 || wait != time.Minute+time.Second {
		t.Fatalf("one minute in: got removed %v, wait %v; want nothing, 1m1s", removed, wait)
	}
	removed, _ := workload.ExpirePrevious(s, t0.Add(2*time.Minute))
	if !slices.Equal(removed, []string{credentials.PreviousCodeKeyKey, credentials.PreviousIssueAPITokenKey}) {
		t.Fatalf("at the old expiry: got removed %v, want both", removed)
	}
	if _, ok := s.Annotations[v1alpha1.AnnotationPreviousUntil]; ok {
		t.Error("the old expiry outlived the values it applied to")
	}
	if r := credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey]); len(r) != 1 || r[0].SHA256 != sha256.Sum256(oldToken) {
		t.Errorf("retired list: got %+v, want the old credential's digest", r)
	}
}

// A second rotation within an overlap keeps one previous value of each: the current one. The
// older one stops now, and says so.
func TestASecondRotationCutsTheOlderOverlap(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	first := s.Data[credentials.IssueAPITokenKey]
	s.Annotations = map[string]string{v1alpha1.AnnotationPreviousUntil: "stale, from an older operator"}
	if _, err := workload.RotateCredentials(s, "r1", t0, overlaps, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Annotations[v1alpha1.AnnotationPreviousUntil]; ok {
		t.Error("a rotation kept the old single expiry beside the two new ones")
	}
	second, secondKey := s.Data[credentials.IssueAPITokenKey], s.Data[credentials.CodeKeyKey]

	// An hour later the code key's overlap is over (not yet removed), the credential's is not.
	rot, err := workload.RotateCredentials(s, "r2", t0.Add(time.Hour), overlaps, rand.Reader)
	if err != nil || !rot.Rotated {
		t.Fatalf("second rotation: got %+v, %v", rot, err)
	}
	if !slices.Equal(rot.Cut, []string{credentials.PreviousIssueAPITokenKey}) {
		t.Errorf("cut: got %v, want only the credential still in its overlap", rot.Cut)
	}
	if !bytes.Equal(s.Data[credentials.PreviousIssueAPITokenKey], second) || !bytes.Equal(s.Data[credentials.PreviousCodeKeyKey], secondKey) {
		t.Fatal("the values current before the second rotation must be the previous ones")
	}
	if got, want := s.Annotations[v1alpha1.AnnotationPreviousIssueAPITokenUntil], "2026-11-26T10:00:00Z"; got != want {
		t.Errorf("credential expiry: got %q, want %q (a full overlap from the second rotation)", got, want)
	}
	if r := credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey]); len(r) != 1 || r[0].SHA256 != sha256.Sum256(first) {
		t.Errorf("retired list: got %+v, want the first credential's digest", r)
	}
	assertNotInTheClear(t, s, first)
}

// A credential that leaked during an overlap could be used for the rest of it: cut- ends every
// old value at once, and a backend still sending one is told it was replaced.
func TestACutKeepsNoOldValue(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	leaked := s.Data[credentials.IssueAPITokenKey]
	if _, err := workload.RotateCredentials(s, "r1", t0, overlaps, rand.Reader); err != nil {
		t.Fatal(err)
	}
	current, currentKey := s.Data[credentials.IssueAPITokenKey], s.Data[credentials.CodeKeyKey]

	rot, err := workload.RotateCredentials(s, v1alpha1.CutCredentialsPrefix+"leak", t0.Add(time.Minute), overlaps, rand.Reader)
	if err != nil || !rot.Rotated || !rot.Emergency {
		t.Fatalf("cut: got %+v, %v; want an emergency rotation", rot, err)
	}
	if !slices.Equal(rot.Cut, []string{credentials.PreviousCodeKeyKey, credentials.PreviousIssueAPITokenKey}) {
		t.Errorf("cut: got %v, want both previous values", rot.Cut)
	}
	for _, k := range []string{credentials.PreviousCodeKeyKey, credentials.PreviousIssueAPITokenKey} {
		if _, ok := s.Data[k]; ok {
			t.Errorf("%s kept after a cut", k)
		}
	}
	for _, a := range []string{v1alpha1.AnnotationPreviousCodeKeyUntil, v1alpha1.AnnotationPreviousIssueAPITokenUntil, v1alpha1.AnnotationPreviousUntil} {
		if _, ok := s.Annotations[a]; ok {
			t.Errorf("%s kept after a cut", a)
		}
	}
	if bytes.Equal(s.Data[credentials.IssueAPITokenKey], current) || bytes.Equal(s.Data[credentials.CodeKeyKey], currentKey) {
		t.Fatal("a cut did not replace the current values")
	}
	r := credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey])
	if len(r) != 2 || r[0].SHA256 != sha256.Sum256(current) || r[1].SHA256 != sha256.Sum256(leaked) {
		t.Errorf("retired list: got %+v, want the current credential's digest, then the leaked one's", r)
	}
	assertNotInTheClear(t, s, leaked)
	assertNotInTheClear(t, s, current)
	if rot, _ := workload.RotateCredentials(s, v1alpha1.CutCredentialsPrefix+"leak", t0.Add(time.Hour), overlaps, rand.Reader); rot.Rotated {
		t.Fatal("the same cut request acted twice")
	}
}

func TestTheRetiredListIsBounded(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	var newest []byte
	for i := range 3 * credentials.MaxRetiredIssueAPITokenDigests {
		at := t0.Add(time.Duration(i) * time.Hour)
		newest = s.Data[credentials.PreviousIssueAPITokenKey]
		if _, err := workload.RotateCredentials(s, at.String(), at, overlaps, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	r := credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey])
	if len(r) != credentials.MaxRetiredIssueAPITokenDigests || r[0].SHA256 != sha256.Sum256(newest) {
		t.Fatalf("got %d entries, newest %x; want %d, newest first", len(r), r[0].SHA256, credentials.MaxRetiredIssueAPITokenDigests)
	}
}

func TestIssueAPICredentialOverlapDefaultsToADay(t *testing.T) {
	t.Parallel()
	ts := server("brand", nil)
	if got := workload.OverlapsFor(ts); got != (workload.Overlaps{CodeKey: v1alpha1.LoginFormTTL, IssueAPI: 24 * time.Hour}) {
		t.Errorf("unset: got %+v, want the login form's TTL and 24h", got)
	}
	ts.Spec.IssueAPICredentialOverlap.Duration = 2 * time.Minute
	if got := workload.OverlapsFor(ts).IssueAPI; got != 2*time.Minute {
		t.Errorf("set: got %v, want 2m", got)
	}
}

// assertNotInTheClear fails when the credential appears anywhere in the Secret but its own keys.
func assertNotInTheClear(t *testing.T, s *corev1.Secret, credential []byte) {
	t.Helper()
	for k, v := range s.Data {
		if k != credentials.IssueAPITokenKey && k != credentials.PreviousIssueAPITokenKey && bytes.Contains(v, credential) {
			t.Errorf("%s holds a retired credential in the clear", k)
		}
	}
	for k, v := range s.Annotations {
		if strings.Contains(v, string(credential)) {
			t.Errorf("annotation %s holds a credential in the clear", k)
		}
	}
}

func TestRepairReplacesOnlyWhatIsUnusable(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	token := append([]byte(nil), s.Data[credentials.IssueAPITokenKey]...)
	s.Data[credentials.CodeKeyKey] = []byte("edited by hand")
	replaced, err := workload.RepairCredentials(s, rand.Reader)
	if err != nil || len(replaced) != 1 || replaced[0] != credentials.CodeKeyKey {
		t.Fatalf("replaced %v, err %v; want only the code key", replaced, err)
	}
	if !bytes.Equal(token, s.Data[credentials.IssueAPITokenKey]) {
		t.Fatal("a valid issue-API credential was replaced")
	}
	if replaced, _ := workload.RepairCredentials(s, rand.Reader); len(replaced) != 0 {
		t.Fatalf("a sound Secret was changed: %v", replaced)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestNoCredentialsWithoutRandomness(t *testing.T) {
	t.Parallel()
	if _, err := workload.NewCredentials(server("brand", nil), failingReader{}); err == nil {
		t.Fatal("credentials made without randomness")
	}
}

func TestLongestSealedLifetimeCoversEverythingTheCodeKeySeals(t *testing.T) {
	ts := &v1alpha1.TokenServer{}
	if got, want := ts.LongestSealedLifetime(), v1alpha1.LoginFormTTL; got != want {
		t.Errorf("default: got %v, want the login form's %v", got, want)
	}
	ts.Spec.CodeTTL.Duration = 9 * time.Minute
	ts.Spec.Login = &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: "https://brand.example/login"}}
	ts.Spec.Login.LandingPage.RequestTTL.Duration = 45 * time.Minute
	if got, want := ts.LongestSealedLifetime(), 45*time.Minute; got != want {
		t.Errorf("landing page: got %v, want %v", got, want)
	}
}
