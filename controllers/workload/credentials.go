package workload

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// AnnotationPreviousUntil on the credentials Secret is when the previous code key and issue-API
// credential stop being accepted (RFC 3339); the operator then removes them.
const AnnotationPreviousUntil = "auth.lpauth.dev/previous-until"

// issueTokenBytes is the entropy of a generated issue-API credential.
const issueTokenBytes = 32

// CredentialsName is the name of a TokenServer's credentials Secret.
func CredentialsName(ts *v1alpha1.TokenServer) string { return snapshot.CredentialsSecretName(ts.Name) }

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
		ObjectMeta: meta(ts, CredentialsName(ts)),
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
	if len(s.Data[snapshot.CodeKeyKey]) != codes.KeySize {
		k, err := randomBytes(random, codes.KeySize)
		if err != nil {
			return nil, err
		}
		s.Data[snapshot.CodeKeyKey] = k
		replaced = append(replaced, snapshot.CodeKeyKey)
	}
	if len(s.Data[snapshot.IssueAPITokenKey]) < issueTokenBytes {
		t, err := randomToken(random)
		if err != nil {
			return nil, err
		}
		s.Data[snapshot.IssueAPITokenKey] = t
		replaced = append(replaced, snapshot.IssueAPITokenKey)
	}
	return replaced, nil
}

// RotateCredentials acts on a rotate-credentials request once: the current code key and
// issue-API credential become the previous ones, accepted until now + keep, and fresh ones take
// their place. It reports whether it changed the Secret.
func RotateCredentials(s *corev1.Secret, request string, now time.Time, keep time.Duration, random io.Reader) (bool, error) {
	if request == "" || s.Annotations[v1alpha1.AnnotationHandledRotate] == request {
		return false, nil
	}
	k, err := randomBytes(random, codes.KeySize)
	if err != nil {
		return false, err
	}
	t, err := randomToken(random)
	if err != nil {
		return false, err
	}
	s.Data[snapshot.PreviousCodeKeyKey] = s.Data[snapshot.CodeKeyKey]
	s.Data[snapshot.PreviousIssueAPITokenKey] = s.Data[snapshot.IssueAPITokenKey]
	s.Data[snapshot.CodeKeyKey], s.Data[snapshot.IssueAPITokenKey] = k, t
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationHandledRotate, request)
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, AnnotationPreviousUntil, now.Add(keep).UTC().Format(time.RFC3339))
	return true, nil
}

// ExpirePrevious removes the previous values once their time is over. It reports whether it
// changed the Secret, and how long until it must look again (zero: nothing pending).
func ExpirePrevious(s *corev1.Secret, now time.Time) (changed bool, wait time.Duration) {
	until, ok := s.Annotations[AnnotationPreviousUntil]
	if !ok {
		return false, 0
	}
	t, err := time.Parse(time.RFC3339, until)
	if err == nil && now.Before(t) {
		// Whole seconds are stored; one more second never ends the overlap early.
		return false, t.Sub(now) + time.Second
	}
	delete(s.Data, snapshot.PreviousCodeKeyKey)
	delete(s.Data, snapshot.PreviousIssueAPITokenKey)
	delete(s.Annotations, AnnotationPreviousUntil)
	return true, 0
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
