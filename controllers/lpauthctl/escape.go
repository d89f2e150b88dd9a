package lpauthctl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// printable is text from a server (a kid, an error body, an OAuth error_description, a claim
// name) made safe for a terminal: every control character (ESC starts the escape sequences that
// rewrite the screen or the title, or set the clipboard), format character (bidi overrides) and
// byte that is not UTF-8 is written as its Go escape (\x1b, \u202e), so it is seen, not obeyed.
// Printable text is left as it is; the result is printable however often it is applied.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}

// excerpt is the start of a body a server answered, printable, for an error message.
func excerpt(body []byte) string {
	const limit = 200
	s := strings.TrimSpace(string(body))
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return printable(s)
}
