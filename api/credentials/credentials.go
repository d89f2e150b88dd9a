// Package credentials is the format of a TokenServer's credentials Secret, "<name>-credentials":
// the key codes are sealed with and the issue API's bearer credential, each with the previous
// value during its overlap, and the digests of credentials rotation retired. The operator
// writes it (controllers/workload), the token server reads it (tokenserver/snapshot).
//
// When each previous value stops being accepted is in the Secret's annotations
// (v1alpha1.AnnotationPreviousCodeKeyUntil, AnnotationPreviousIssueAPITokenUntil).
package credentials

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// CodeKeySize is the size of a code key: AES-256.
const CodeKeySize = 32

// Data keys of the credentials Secret.
const (
	CodeKeyKey               = "codeKey"
	PreviousCodeKeyKey       = "previousCodeKey"
	IssueAPITokenKey         = "issueAPIToken"
	PreviousIssueAPITokenKey = "previousIssueAPIToken"
	// RetiredIssueAPITokenDigestsKey lists the issue-API credentials rotation retired recently,
	// newest first, one per line: "<RFC 3339 time it stopped being accepted> <unpadded base64url
	// SHA-256 of the credential>". Only digests: the token server can tell a backend its
	// credential was replaced without anyone learning, from the Secret, what it was.
	RetiredIssueAPITokenDigestsKey = "retiredIssueAPITokenDigests"
)

// MaxRetiredIssueAPITokenDigests bounds RetiredIssueAPITokenDigestsKey: the operator keeps at
// most this many, and the token server reads no more, so however long a hand-edited list is, a
// refused request compares against at most this many digests.
const MaxRetiredIssueAPITokenDigests = 10

// SecretName is the name of a TokenServer's credentials Secret.
func SecretName(tokenServer string) string { return tokenServer + "-credentials" }

// RetiredDigest is one entry of RetiredIssueAPITokenDigestsKey.
type RetiredDigest struct {
	// Retired is when the credential stopped being accepted.
	Retired time.Time
	SHA256  [sha256.Size]byte
}

// ParseRetiredDigests reads RetiredIssueAPITokenDigestsKey: at most
// MaxRetiredIssueAPITokenDigests entries, skipping malformed lines (a hand edit must not take
// the server down for what only improves an error message).
func ParseRetiredDigests(b []byte) []RetiredDigest {
	var out []RetiredDigest
	for line := range bytes.Lines(b) {
		if len(out) == MaxRetiredIssueAPITokenDigests {
			break
		}
		at, digest, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, string(at))
		if err != nil {
			continue
		}
		digest = bytes.TrimSpace(digest)
		var d RetiredDigest
		// Decode writes past a too-small buffer: the length is checked first.
		if base64.RawURLEncoding.DecodedLen(len(digest)) != sha256.Size {
			continue
		}
		if n, err := base64.RawURLEncoding.Decode(d.SHA256[:], digest); err != nil || n != sha256.Size {
			continue
		}
		d.Retired = t
		out = append(out, d)
	}
	return out
}

// FormatRetiredDigests writes entries as ParseRetiredDigests reads them.
func FormatRetiredDigests(ds []RetiredDigest) []byte {
	var b bytes.Buffer
	for _, d := range ds {
		b.WriteString(d.Retired.UTC().Format(time.RFC3339))
		b.WriteByte(' ')
		b.WriteString(base64.RawURLEncoding.EncodeToString(d.SHA256[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}
