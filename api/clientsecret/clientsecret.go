// Package clientsecret decides whether a client secret is strong enough to serve. The token
// endpoint compares a presented secret before it counts failures, so that a correct secret is
// never refused whoever else is guessing; that is safe only for secrets nobody can guess. The
// operator refuses weaker ones in the client's status, and the secret set leaves them out, so
// the token server never serves one.
package clientsecret

import (
	"errors"
	"fmt"
	"math"
)

// Bounds on a client secret.
const (
	MinBytes = 32
	MaxBytes = 512
	// MinBits is the estimated entropy a secret must carry.
	MinBits = 128
	// minBitsPerChar refuses secrets made of a few characters, however long. A random secret
	// of 32 hex characters measures about 3.6 bits a character, and under 2.7 about once in a
	// million; "abab…" measures 1.
	minBitsPerChar = 2.5
	// maxRepeat is the longest substring that may appear twice: random secrets of 32 to 512
	// characters essentially never repeat 8 characters; "Password1!Password1!" does.
	maxRepeat = 7
)

// Check returns why v is not a usable client secret, or nil.
func Check(v []byte) error {
	if len(v) < MinBytes || len(v) > MaxBytes {
		return fmt.Errorf("a client secret must be %d to %d bytes, got %d", MinBytes, MaxBytes, len(v))
	}
	for _, b := range v {
		if b <= ' ' || b > '~' {
			return errors.New("a client secret must be printable ASCII without spaces")
		}
	}
	if h := bitsPerChar(v); h < minBitsPerChar {
		return fmt.Errorf("a client secret must be random: its characters carry about %.1f bits each, at least %.1f are needed (e.g. openssl rand -base64 32)", h, minBitsPerChar)
	}
	if bits := classBits(v); bits < MinBits {
		return fmt.Errorf("a client secret must be random: this one carries about %d bits, at least %d are needed (e.g. openssl rand -base64 32)", bits, MinBits)
	}
	if n := longestRepeat(v); n > maxRepeat {
		return fmt.Errorf("a client secret must be random: it repeats a run of %d characters (e.g. openssl rand -base64 32)", n)
	}
	return nil
}

// bitsPerChar is the Shannon entropy of v's characters as they occur in v.
func bitsPerChar(v []byte) float64 {
	var counts [256]int
	for _, b := range v {
		counts[b]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(v))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// classBits estimates the entropy of v from the character classes it uses: an upper bound for
// human-chosen strings, which is why the other checks exist.
func classBits(v []byte) int {
	var lower, upper, digit, other bool
	for _, b := range v {
		switch {
		case b >= 'a' && b <= 'z':
			lower = true
		case b >= 'A' && b <= 'Z':
			upper = true
		case b >= '0' && b <= '9':
			digit = true
		default:
			other = true
		}
	}
	alphabet := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.used {
			alphabet += c.size
		}
	}
	return int(float64(len(v)) * math.Log2(float64(max(alphabet, 1))))
}

// longestRepeat is the length of the longest substring that occurs at least twice in v
// (overlapping occurrences count). Quadratic, on at most MaxBytes bytes.
func longestRepeat(v []byte) int {
	best := 0
	for shift := 1; shift < len(v); shift++ {
		run := 0
		for i := 0; i+shift < len(v); i++ {
			if v[i] == v[i+shift] {
				run++
				best = max(best, run)
			} else {
				run = 0
			}
		}
	}
	return best
}
