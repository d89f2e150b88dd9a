package workload_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
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
	if len(a.Data[snapshot.CodeKeyKey]) != codes.KeySize || len(a.Data[snapshot.IssueAPITokenKey]) != 43 {
		t.Fatalf("code key %d bytes, issue token %d bytes", len(a.Data[snapshot.CodeKeyKey]), len(a.Data[snapshot.IssueAPITokenKey]))
	}
	if bytes.Equal(a.Data[snapshot.CodeKeyKey], b.Data[snapshot.CodeKeyKey]) || bytes.Equal(a.Data[snapshot.IssueAPITokenKey], b.Data[snapshot.IssueAPITokenKey]) {
		t.Fatal("two servers got the same credentials")
	}
	if a.Name != "brand-credentials" || a.Labels[v1alpha1.LabelTokenServerReads] != "true" || a.OwnerReferences[0].UID != ts.UID {
		t.Fatalf("credentials Secret meta = %+v", a.ObjectMeta)
	}
	if _, err := codes.NewSealer(a.Data[snapshot.CodeKeyKey]); err != nil {
		t.Fatalf("the token server cannot use the code key: %v", err)
	}
	// A rotate request present at creation is already satisfied.
	ts.Annotations = map[string]string{v1alpha1.AnnotationRotateCredentials: "r1"}
	c, _ := workload.NewCredentials(ts, rand.Reader)
	if changed, _ := workload.RotateCredentials(c, "r1", t0, time.Minute, rand.Reader); changed {
		t.Fatal("a new Secret rotated for a request made before it existed")
	}
}

func TestRotationKeepsThePreviousValuesForOneTTL(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	oldKey, oldToken := s.Data[snapshot.CodeKeyKey], s.Data[snapshot.IssueAPITokenKey]

	changed, err := workload.RotateCredentials(s, "2026-11-25", t0, 2*time.Minute, rand.Reader)
	if err != nil || !changed {
		t.Fatalf("rotate: changed=%v err=%v", changed, err)
	}
	if !bytes.Equal(s.Data[snapshot.PreviousCodeKeyKey], oldKey) || !bytes.Equal(s.Data[snapshot.PreviousIssueAPITokenKey], oldToken) {
		t.Fatal("the previous values must stay, so codes already issued still redeem")
	}
	if bytes.Equal(s.Data[snapshot.CodeKeyKey], oldKey) || bytes.Equal(s.Data[snapshot.IssueAPITokenKey], oldToken) {
		t.Fatal("rotation did not replace the current values")
	}
	if changed, _ := workload.RotateCredentials(s, "2026-11-25", t0.Add(time.Hour), time.Minute, rand.Reader); changed {
		t.Fatal("the same request rotated twice")
	}

	// Before the TTL is over nothing is removed, and the wait says when to come back.
	if changed, wait := workload.ExpirePrevious(s, t0.Add(time.Minute)); changed || wait != time.Minute+time.Second {
		t.Fatalf("one minute in: changed=%v wait=%v", changed, wait)
	}
	if changed, wait := workload.ExpirePrevious(s, t0.Add(2*time.Minute)); !changed || wait != 0 {
		t.Fatalf("at the TTL: changed=%v wait=%v", changed, wait)
	}
	if _, ok := s.Data[snapshot.PreviousCodeKeyKey]; ok {
		t.Fatal("previous code key still there after its TTL")
	}
	if _, ok := s.Data[snapshot.PreviousIssueAPITokenKey]; ok {
		t.Fatal("previous issue-API credential still there after its TTL")
	}
	if changed, wait := workload.ExpirePrevious(s, t0.Add(time.Hour)); changed || wait != 0 {
		t.Fatal("nothing pending, nothing to do")
	}
}

func TestRepairReplacesOnlyWhatIsUnusable(t *testing.T) {
	t.Parallel()
	s, _ := workload.NewCredentials(server("brand", nil), rand.Reader)
	token := append([]byte(nil), s.Data[snapshot.IssueAPITokenKey]...)
	s.Data[snapshot.CodeKeyKey] = []byte("edited by hand")
	replaced, err := workload.RepairCredentials(s, rand.Reader)
	if err != nil || len(replaced) != 1 || replaced[0] != snapshot.CodeKeyKey {
		t.Fatalf("replaced %v, err %v; want only the code key", replaced, err)
	}
	if !bytes.Equal(token, s.Data[snapshot.IssueAPITokenKey]) {
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
