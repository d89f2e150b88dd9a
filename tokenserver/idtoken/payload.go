package idtoken

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// The payload of every token is written here rather than by json.Marshal over a map: on /token
// the map, its sorted keys, the reflection and lp_sdes's nested maps cost more CPU than the
// rest of the request besides the signature (BenchmarkTokenHandlerUnsigned in
// tokenserver/server). The bytes are json.Marshal's, key order and escaping included
// (TestPayloadIsJSONMarshals and FuzzPayloadString compare them), so a token reads the same to
// any verifier whichever way it was written.

// claim is one member of the payload; exactly one of its values is used.
type claim struct {
	key  string
	str  string
	num  int64
	sdes []lpsdes.SDE
	raw  []byte // lp_sdes already written (Identity.SDEsJSON), instead of sdes
	kind byte   // 's' string, 'n' number, 'l' lp_sdes
}

// appendPayload writes the claims Mint signs: the client's static claims, then the identity's
// claims over them, then the claims the server sets over both (lp_sdes only when there are
// SDEs), in json.Marshal's order (sorted by key).
//
// sdesJSON, when not empty, is lp_sdes already written by CodeSDEs, and sdes is ignored.
func appendPayload(buf []byte, s *snapshot.Snapshot, c *snapshot.Client, id Identity, iat, exp int64, sdes []lpsdes.SDE, sdesJSON []byte) ([]byte, error) {
	set := [...]claim{
		{key: "aud", str: c.Audience, kind: 's'},
		{key: "exp", num: exp, kind: 'n'}, // seconds: a documented LivePerson trap is milliseconds
		{key: "iat", num: iat, kind: 'n'},
		{key: "iss", str: s.Issuer, kind: 's'},
		{key: "sub", str: id.Subject, kind: 's'},
		{key: "lp_sdes", sdes: sdes, raw: sdesJSON, kind: 'l'},
	}
	server := set[:5]
	if len(sdes) > 0 || len(sdesJSON) > 0 {
		server = set[:]
	}
	setByServer := func(k string) bool {
		return slices.ContainsFunc(server, func(c claim) bool { return c.key == k })
	}
	var stack [24]claim
	all := append(stack[:0], server...)
	for k, v := range c.StaticClaims {
		if _, overridden := id.Claims[k]; !overridden && !setByServer(k) {
			all = append(all, claim{key: k, str: v, kind: 's'})
		}
	}
	for k, v := range id.Claims {
		if !setByServer(k) {
			all = append(all, claim{key: k, str: v, kind: 's'})
		}
	}
	slices.SortFunc(all, func(a, b claim) int { return strings.Compare(a.key, b.key) })
	var err error
	buf = append(buf, '{')
	for i, m := range all {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, m.key)
		buf = append(buf, ':')
		switch m.kind {
		case 's':
			buf = appendString(buf, m.str)
		case 'n':
			buf = strconv.AppendInt(buf, m.num, 10)
		case 'l':
			if len(m.raw) > 0 {
				buf = append(buf, m.raw...)
			} else if buf, err = appendSDEs(buf, m.sdes); err != nil {
				return nil, err
			}
		}
	}
	return append(buf, '}'), nil
}

// CodeSDEs writes an identity's lp_sdes for a code: merged (ctmrinfo first) and in the bytes
// Mint writes, so that redeeming the code for a client with no lp_sdes template puts them into
// the token as they are (Identity.SDEsJSON) instead of decoding and validating them again.
// It refuses SDEs longer than lpsdes.MaxBytes once written: lpsdes.Parse measured the brand's
// bytes, and '&', '<' and '>' take six bytes each here.
func CodeSDEs(sdes []lpsdes.SDE) ([]byte, error) {
	b, err := appendSDEs(nil, lpsdes.Merge(nil, sdes))
	if err != nil {
		return nil, err
	}
	if len(b) > lpsdes.MaxBytes {
		return nil, fmt.Errorf("lp_sdes: %d bytes as the token carries them ('&', '<' and '>' are escaped in 6 bytes each), more than %d", len(b), lpsdes.MaxBytes)
	}
	return b, nil
}

// appendSDEs writes lp_sdes as lpsdes.SDE's MarshalJSON does: {"info"|"personal":{…},"type":…}.
func appendSDEs(buf []byte, sdes []lpsdes.SDE) ([]byte, error) {
	buf = append(buf, '[')
	for i, s := range sdes {
		if i > 0 {
			buf = append(buf, ',')
		}
		content := "personal"
		if s.Type == "ctmrinfo" {
			content = "info"
		}
		buf = append(buf, '{')
		buf = appendString(buf, content)
		buf = append(buf, ':')
		var err error
		if buf, err = appendValue(buf, s.Fields); err != nil {
			return nil, err
		}
		buf = append(buf, ',')
		buf = appendString(buf, "type")
		buf = append(buf, ':')
		buf = appendString(buf, s.Type)
		buf = append(buf, '}')
	}
	return append(buf, ']'), nil
}

// appendValue writes a decoded JSON value (what lpsdes keeps: strings, numbers, objects,
// arrays) as json.Marshal would; anything else goes through json.Marshal itself, and its error
// (a NaN from a decoded template, say) refuses the token as json.Marshal refused it.
func appendValue(buf []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case string:
		return appendString(buf, v), nil
	case map[string]any:
		if v == nil {
			return append(buf, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, k)
			buf = append(buf, ':')
			if buf, err = appendValue(buf, v[k]); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	case []any:
		if v == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendValue(buf, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case nil:
		return append(buf, "null"...), nil
	}
	// json.Number (checked and written as is by json.Marshal), float64 and anything else.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, b...), nil
}

const hex = "0123456789abcdef"

// appendString quotes s as json.Marshal does: HTML characters, control characters, U+2028 and
// U+2029 escaped, invalid UTF-8 replaced with U+FFFD.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
