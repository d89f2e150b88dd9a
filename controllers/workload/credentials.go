package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// DefaultIssueAPICredentialOverlap is spec.issueAPICredentialOverlap when unset (the CRD
// defaults it too; an object stored before the field existed reads as zero).
const DefaultIssueAPICredentialOverlap = 24 * time.Hour

// RetiredDigestsKept is how long the digest of a retired issue-API credential stays in the
// Secret, so a backend still sending it is told it was replaced rather than that it is wrong.
const RetiredDigestsKept = 30 * 24 * time.Hour

// issueTokenBytes is the entropy of a generated issue-API credential.
const issueTokenBytes = 32

// CodeTTL is spec.codeTTL with its default.
func CodeTTL(ts *v1alpha1.TokenServer) time.Duration {
	if ts.Spec.CodeTTL.Duration == 0 {
		return v1alpha1.DefaultCodeTTL
	}
	return ts.Spec.CodeTTL.Duration
}

// NewCredentials returns the credentials Secret of a new TokenServer: a code-sealing key and an
// issue-API credential, both fresh. A rotate-credentials annotation already present counts as
// handled: a new server's credentials are as fresh as they get.
func NewCredentials(ts *v1alpha1.TokenServer, random io.Reader) (*corev1.Secret, error) {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(ts, credentials.SecretName(ts.Name)),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	s.Labels[v1alpha1.LabelTokenServerReads] = "true"
	if v := ts.Annotations[v1alpha1.AnnotationRotateCredentials]; v != "" {
		s.Annotations = map[string]string{v1alpha1.AnnotationHandledRotate: v}
	}
	if _, err := RepairCredentials(s, random); err != nil {
		return nil, err
	}
	return s, nil
}

// RepairCredentials generates whichever current value is missing or unusable (a Secret edited by
// hand). It reports what it replaced; existing valid values are never touched.
func RepairCredentials(s *corev1.Secret, random io.Reader) ([]string, error) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	var replaced []string
	if len(s.Data[credentials.CodeKeyKey]) != credentials.CodeKeySize {
		k, err := randomBytes(random, credentials.CodeKeySize)
		if err != nil {
			return nil, err
		}
		s.Data[credentials.CodeKeyKey] = k
		replaced = append(replaced, credentials.CodeKeyKey)
	}
	if len(s.Data[credentials.IssueAPITokenKey]) < issueTokenBytes {
		t, err := randomToken(random)
		if err != nil {
			return nil, err
		}
		s.Data[credentials.IssueAPITokenKey] = t
		replaced = append(replaced, credentials.IssueAPITokenKey)
	}
	return replaced, nil
}

// IssueAPICredentialOverlap is spec.issueAPICredentialOverlap with its default.
func IssueAPICredentialOverlap(ts *v1alpha1.TokenServer) time.Duration {
	if ts.Spec.IssueAPICredentialOverlap.Duration <= 0 {
		return DefaultIssueAPICredentialOverlap
	}
	return ts.Spec.IssueAPICredentialOverlap.Duration
}

// Overlaps is how long each previous value stays accepted after a rotation.
type Overlaps struct {
	// CodeKey: as long as anything the old key sealed can still be valid.
	CodeKey time.Duration
	// IssueAPI: the time the brand's backends have to switch to the new credential.
	IssueAPI time.Duration
}

// OverlapsFor is what a TokenServer's rotation keeps: the code key for the longest anything it
// seals lives (codes, but also login forms, landing-page requests and upstream login state,
// which live longer), the issue-API credential for spec.issueAPICredentialOverlap, however
// short codes live.
func OverlapsFor(ts *v1alpha1.TokenServer) Overlaps {
	return Overlaps{CodeKey: ts.LongestSealedLifetime(), IssueAPI: IssueAPICredentialOverlap(ts)}
}

// previous is one previous value of the credentials Secret and its expiry annotation.
type previous struct{ key, until string }

var (
	previousCodeKey       = previous{credentials.PreviousCodeKeyKey, v1alpha1.AnnotationPreviousCodeKeyUntil}
	previousIssueAPIToken = previous{credentials.PreviousIssueAPITokenKey, v1alpha1.AnnotationPreviousIssueAPITokenUntil}
	previousValues        = []previous{previousCodeKey, previousIssueAPIToken}
)

// expiry is when the value stops being accepted: its own annotation, else the single one older
// operators wrote. ok is false when neither is there (a value put there by hand stays until
// removed by hand); an unreadable time is the zero time, so the value goes.
func (p previous) expiry(s *corev1.Secret) (t time.Time, ok bool) {
	v, ok := s.Annotations[p.until]
	if !ok {
		v, ok = s.Annotations[v1alpha1.AnnotationPreviousUntil]
	}
	if !ok {
		return time.Time{}, false
	}
	t, _ = time.Parse(time.RFC3339, v)
	return t, true
}

// accepted reports whether the token server still accepts the value at now.
func (p previous) accepted(s *corev1.Secret, now time.Time) bool {
	if len(s.Data[p.key]) == 0 {
		return false
	}
	t, ok := p.expiry(s)
	return !ok || now.Before(t)
}

// Rotation is what RotateCredentials did.
type Rotation struct {
	Rotated bool
	// Cut are the previous values (their data keys) the rotation replaced while they were still
	// accepted. Only one previous value of each kind is kept: a second rotation within an
	// overlap makes the current values previous and ends the older ones' overlap at once.
	Cut []string
	// Emergency: a cut- request, which kept no previous value.
	Emergency bool
}

// RotateCredentials acts on a rotate-credentials request once: the current code key and
// issue-API credential become the previous ones, each accepted for its overlap, and fresh ones
// take their place. A previous issue-API credential it replaces is retired (see
// ExpirePrevious). A request starting with v1alpha1.CutCredentialsPrefix keeps no previous
// value: every old one is refused from now on (Rotation.Emergency).
func RotateCredentials(s *corev1.Secret, request string, now time.Time, o Overlaps, random io.Reader) (Rotation, error) {
	if request == "" || s.Annotations[v1alpha1.AnnotationHandledRotate] == request {
		return Rotation{}, nil
	}
	if strings.HasPrefix(request, v1alpha1.CutCredentialsPrefix) {
		return cutCredentials(s, request, now, random)
	}
	k, t, err := freshCredentials(random, s)
	if err != nil {
		return Rotation{}, err
	}
	rot := Rotation{Rotated: true}
	for _, p := range previousValues {
		if p.accepted(s, now) {
			rot.Cut = append(rot.Cut, p.key)
		}
	}
	retire(s, s.Data[credentials.PreviousIssueAPITokenKey], now)
	s.Data[credentials.PreviousCodeKeyKey] = s.Data[credentials.CodeKeyKey]
	s.Data[credentials.PreviousIssueAPITokenKey] = s.Data[credentials.IssueAPITokenKey]
	s.Data[credentials.CodeKeyKey], s.Data[credentials.IssueAPITokenKey] = k, t
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationHandledRotate, request)
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationPreviousCodeKeyUntil, formatUntil(now.Add(o.CodeKey)))
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationPreviousIssueAPITokenUntil, formatUntil(now.Add(o.IssueAPI)))
	// Both values now have their own expiry.
	delete(s.Annotations, v1alpha1.AnnotationPreviousUntil)
	return rot, nil
}

// cutCredentials replaces both values and keeps neither old one: the issue-API credentials
// (current and previous) go on the retired list, so a backend still sending one is told it was
// replaced; the code keys go, so nothing they sealed redeems.
func cutCredentials(s *corev1.Secret, request string, now time.Time, random io.Reader) (Rotation, error) {
	k, t, err := freshCredentials(random, s)
	if err != nil {
		return Rotation{}, err
	}
	rot := Rotation{Rotated: true, Emergency: true}
	for _, p := range previousValues {
		if p.accepted(s, now) {
			rot.Cut = append(rot.Cut, p.key)
		}
		delete(s.Annotations, p.until)
	}
	retire(s, s.Data[credentials.PreviousIssueAPITokenKey], now)
	retire(s, s.Data[credentials.IssueAPITokenKey], now)
	delete(s.Data, credentials.PreviousCodeKeyKey)
	delete(s.Data, credentials.PreviousIssueAPITokenKey)
	delete(s.Annotations, v1alpha1.AnnotationPreviousUntil)
	s.Data[credentials.CodeKeyKey], s.Data[credentials.IssueAPITokenKey] = k, t
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationHandledRotate, request)
	return rot, nil
}

// freshCredentials makes a new code key and issue-API credential, and readies s's data for them.
func freshCredentials(random io.Reader, s *corev1.Secret) (key, token []byte, err error) {
	if key, err = randomBytes(random, credentials.CodeKeySize); err != nil {
		return nil, nil, err
	}
	if token, err = randomToken(random); err != nil {
		return nil, nil, err
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	return key, token, nil
}

// formatUntil rounds up: a stored whole second never ends an overlap early.
func formatUntil(t time.Time) string {
	return t.Add(time.Second - 1).Truncate(time.Second).UTC().Format(time.RFC3339)
}

// ExpirePrevious removes each previous value once its time is over, with its annotation; the
// issue-API credential's digest goes on the retired list, which keeps at most
// credentials.MaxRetiredIssueAPITokenDigests entries for RetiredDigestsKept. It reports the data
// keys it removed, and how long until it must look again (zero: nothing pending).
func ExpirePrevious(s *corev1.Secret, now time.Time) (removed []string, wait time.Duration) {
	soonest := func(d time.Duration) {
		// A second's margin: the next look comes after the stored time, never just before it.
		if d += time.Second; wait == 0 || d < wait {
			wait = d
		}
	}
	for _, p := range previousValues {
		v := s.Data[p.key]
		if len(v) == 0 {
			// Removed by hand, or never there: its expiry goes with it.
			delete(s.Data, p.key)
			delete(s.Annotations, p.until)
			continue
		}
		t, ok := p.expiry(s)
		if !ok {
			continue
		}
		if now.Before(t) {
			soonest(t.Sub(now))
			continue
		}
		if p == previousIssueAPIToken {
			retire(s, v, now)
		}
		delete(s.Data, p.key)
		delete(s.Annotations, p.until)
		removed = append(removed, p.key)
	}
	if _, ok := s.Annotations[v1alpha1.AnnotationPreviousUntil]; ok && !dependsOnOldExpiry(s) {
		delete(s.Annotations, v1alpha1.AnnotationPreviousUntil)
	}
	if d := pruneRetired(s, now); d > 0 {
		soonest(d)
	}
	return removed, wait
}

// dependsOnOldExpiry reports whether a previous value still takes its expiry from the single
// annotation of older operators.
func dependsOnOldExpiry(s *corev1.Secret) bool {
	for _, p := range previousValues {
		if _, own := s.Annotations[p.until]; len(s.Data[p.key]) > 0 && !own {
			return true
		}
	}
	return false
}

// retire puts the SHA-256 digest of an issue-API credential that is no longer accepted at the
// head of the retired list, never the credential itself: the Secret is read by the token server
// and whoever may read Secrets, and a retired credential must not be recoverable from it.
func retire(s *corev1.Secret, credential []byte, now time.Time) {
	// The token server trims what it accepts: the digest must be of the same bytes.
	credential = bytes.TrimSpace(credential)
	if len(credential) == 0 {
		return
	}
	entry := credentials.RetiredDigest{Retired: now, SHA256: sha256.Sum256(credential)}
	list := slices.DeleteFunc(credentials.ParseRetiredDigests(s.Data[credentials.RetiredIssueAPITokenDigestsKey]),
		func(d credentials.RetiredDigest) bool { return d.SHA256 == entry.SHA256 })
	list = append([]credentials.RetiredDigest{entry}, list...)
	if len(list) > credentials.MaxRetiredIssueAPITokenDigests {
		list = list[:credentials.MaxRetiredIssueAPITokenDigests]
	}
	s.Data[credentials.RetiredIssueAPITokenDigestsKey] = credentials.FormatRetiredDigests(list)
}

// pruneRetired drops retired digests older than RetiredDigestsKept (and lines it cannot read),
// and says how long until the oldest kept one is due.
func pruneRetired(s *corev1.Secret, now time.Time) time.Duration {
	raw, ok := s.Data[credentials.RetiredIssueAPITokenDigestsKey]
	if !ok {
		return 0
	}
	list := slices.DeleteFunc(credentials.ParseRetiredDigests(raw), func(d credentials.RetiredDigest) bool {
		return !now.Before(d.Retired.Add(RetiredDigestsKept))
	})
	if len(list) == 0 {
		delete(s.Data, credentials.RetiredIssueAPITokenDigestsKey)
		return 0
	}
	if b := credentials.FormatRetiredDigests(list); !bytes.Equal(b, raw) {
		s.Data[credentials.RetiredIssueAPITokenDigestsKey] = b
	}
	oldest := list[0].Retired
	for _, d := range list[1:] {
		if d.Retired.Before(oldest) {
			oldest = d.Retired
		}
	}
	return oldest.Add(RetiredDigestsKept).Sub(now)
}

func randomBytes(random io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return b, nil
}

// randomToken is printable so it can be pasted into a brand's configuration as is.
func randomToken(random io.Reader) ([]byte, error) {
	b, err := randomBytes(random, issueTokenBytes)
	if err != nil {
		return nil, err
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
}
