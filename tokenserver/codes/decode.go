package codes

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodePayload reads a payload as Seal writes it (json.Marshal of Payload: its keys in order,
// no spaces, strings without escapes in the common case) without encoding/json's reflection,
// which was a fifth of /token's CPU besides the signature (BenchmarkTokenHandlerUnsigned in
// tokenserver/server). Whatever it is not sure of — an escape, whitespace, a key it does not
// know, a duplicate, a number that is not a plain integer, null — it declines (ok false) and Open
// reads the payload with encoding/json, so a code means the same whichever reader read it
// (FuzzDecodePayload compares the two).
func decodePayload(b []byte) (p Payload, ok bool) {
	s := scanner{b: b}
	if !s.next('{') {
		return p, false
	}
	var seen uint16
	for first := true; ; first = false {
		if s.next('}') {
			return p, s.i == len(s.b)
		}
		if !first && !s.next(',') {
			return p, false
		}
		key, ok := s.bytes()
		if !ok || !s.next(':') {
			return p, false
		}
		bit, ok := keyBits[string(key)] // no allocation: the compiler looks the bytes up
		if !ok || seen&bit != 0 {
			return p, false
		}
		seen |= bit
		switch string(key) {
		case "jti":
			p.ID, ok = s.str()
		case "cid":
			p.ClientID, ok = s.str()
		case "sub":
			p.Subject, ok = s.str()
		case "ru":
			p.RedirectURI, ok = s.str()
		case "cc":
			p.CodeChallenge, ok = s.str()
		case "ccm":
			p.CodeChallengeMethod, ok = s.str()
		case "exp":
			p.Expiry, ok = s.int()
		case "iat":
			p.Issued, ok = s.int()
		case "clm":
			p.Claims, ok = s.raw('{', '}')
		case "sdes":
			p.LPSdes, ok = s.raw('[', ']')
		case "sdesw":
			p.SDEsWritten, ok = s.bool()
		}
		if !ok {
			return p, false
		}
	}
}

var keyBits = map[string]uint16{
	"jti": 1 << 0, "cid": 1 << 1, "sub": 1 << 2, "exp": 1 << 3, "iat": 1 << 4, "clm": 1 << 5,
	"sdes": 1 << 6, "sdesw": 1 << 7, "ru": 1 << 8, "cc": 1 << 9, "ccm": 1 << 10,
}

// maxRawDepth is as deep as a claims or lp_sdes value may nest before the fast reader declines
// it (lp_sdes nest four levels at most).
const maxRawDepth = 64

type scanner struct {
	b []byte
	i int
}

func (s *scanner) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string with no escapes and no control characters, in valid UTF-8.
func (s *scanner) str() (string, bool) {
	v, ok := s.bytes()
	return string(v), ok
}

// bytes is str without the copy.
func (s *scanner) bytes() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// int reads an integer as JSON writes one: an optional minus, then 0 or digits not starting
// with 0, that fits an int64.
func (s *scanner) int() (int64, bool) {
	start := s.i
	s.next('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

func (s *scanner) bool() (bool, bool) {
	for _, lit := range [...]string{"true", "false"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return lit == "true", true
		}
	}
	return false, false
}

// raw reads an object or array (open … close) whole, checked with json.Valid, as a copy.
func (s *scanner) raw(open, close byte) (json.RawMessage, bool) {
	if s.i >= len(s.b) || s.b[s.i] != open {
		return nil, false
	}
	start, depth, inString := s.i, 0, false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case inString && c == '\\':
			s.i++ // the escaped character cannot end the string
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			// json.Valid below judges the value alone, encoding/json the whole payload: the
			// two differ only past its 10,000 levels, far past anything Seal writes.
			if depth++; depth > maxRawDepth {
				return nil, false
			}
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				s.i++
				v := s.b[start:s.i]
				if c != close || !json.Valid(v) {
					return nil, false
				}
				return append(json.RawMessage(nil), v...), true
			}
		}
	}
	return nil, false
}
