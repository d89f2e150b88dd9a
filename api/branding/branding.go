// Package branding is the look and the words of the pages a customer sees (login form, error
// pages), read from the brand's ConfigMap. The operator validates the ConfigMap with it for the
// TokenServer's BrandingApplied condition, and the token server renders with it: one parser, so
// the condition and the pages never disagree.
package branding

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Branding is how the login and error pages look and what they say; zero values mean the
// defaults.
type Branding struct {
	Title, LogoURL, PrimaryColor, BackgroundColor string
	// Lang is the pages' language (the html lang attribute, which screen readers and
	// translators go by): it must say the language Text is written in.
	Lang string
	// Dir is the text direction, "ltr" or "rtl" (Arabic, Hebrew); empty is left to right.
	Dir  string
	Text Text
}

// Text is every sentence a customer can read on the pages, so a brand can have them in its
// customers' language. Error pages say what the customer can do; why a request was refused
// (which check failed) is for the token server's log only. An empty field means DefaultText's.
type Text struct {
	// The login form (staticUsers).
	SignInTitle, SignInPrompt, Username, Password, SignInButton string
	// Alerts above the login form.
	WrongCredentials, TooManyAttempts string
	// Error pages: a heading and a sentence each.
	LinkNotValidTitle, LinkNotValid string // an unknown client or redirect_uri, a malformed link
	ExpiredTitle, Expired           string // a login form or upstream login that outlived its time
	UnavailableTitle, Unavailable   string // no usable connector, the identity provider is down
	NotAllowedTitle, NotAllowed     string // the authenticating proxy did not vouch for the person
	FailedTitle, Failed             string // the person was authenticated, but no code could be issued
}

// DefaultText is what the pages say in English when the branding ConfigMap does not say it.
var DefaultText = Text{
	SignInTitle:       "Sign in",
	SignInPrompt:      "Sign in to continue your conversation.",
	Username:          "Username",
	Password:          "Password",
	SignInButton:      "Sign in",
	WrongCredentials:  "Wrong username or password. Please try again.",
	TooManyAttempts:   "Too many failed attempts. Please wait a minute and try again.",
	LinkNotValidTitle: "Sign-in link not valid",
	LinkNotValid:      "This sign-in link is not valid. Please return to the chat and try again.",
	ExpiredTitle:      "Sign-in expired",
	Expired:           "This sign-in page has expired. Please return to the chat and try again.",
	UnavailableTitle:  "Sign-in unavailable",
	Unavailable:       "Signing in is not available right now. Please try again in a few minutes.",
	NotAllowedTitle:   "Sign-in not allowed",
	NotAllowed:        "We could not confirm who you are. Please sign in on our website, then return to the chat and try again.",
	FailedTitle:       "Sign-in failed",
	Failed:            "We could not sign you in. Please return to the chat and try again.",
}

// Bounds of a text value, in characters: a label or heading fits on a line or two, a sentence
// in a paragraph. Longer is a pasting mistake, and would break the page's layout.
const (
	maxShortText = 100
	maxLongText  = 300
)

// textKey is a branding ConfigMap key for a Text field, with its bound.
type textKey struct {
	key   string
	field func(*Text) *string
	max   int
}

// textKeys are the branding ConfigMap's keys for Text, with their fields and bounds.
var textKeys = []textKey{
	{"text.signInTitle", func(t *Text) *string { return &t.SignInTitle }, maxShortText},
	{"text.signInPrompt", func(t *Text) *string { return &t.SignInPrompt }, maxLongText},
	{"text.username", func(t *Text) *string { return &t.Username }, maxShortText},
	{"text.password", func(t *Text) *string { return &t.Password }, maxShortText},
	{"text.signInButton", func(t *Text) *string { return &t.SignInButton }, maxShortText},
	{"text.wrongCredentials", func(t *Text) *string { return &t.WrongCredentials }, maxLongText},
	{"text.tooManyAttempts", func(t *Text) *string { return &t.TooManyAttempts }, maxLongText},
	{"text.linkNotValidTitle", func(t *Text) *string { return &t.LinkNotValidTitle }, maxShortText},
	{"text.linkNotValid", func(t *Text) *string { return &t.LinkNotValid }, maxLongText},
	{"text.expiredTitle", func(t *Text) *string { return &t.ExpiredTitle }, maxShortText},
	{"text.expired", func(t *Text) *string { return &t.Expired }, maxLongText},
	{"text.unavailableTitle", func(t *Text) *string { return &t.UnavailableTitle }, maxShortText},
	{"text.unavailable", func(t *Text) *string { return &t.Unavailable }, maxLongText},
	{"text.notAllowedTitle", func(t *Text) *string { return &t.NotAllowedTitle }, maxShortText},
	{"text.notAllowed", func(t *Text) *string { return &t.NotAllowed }, maxLongText},
	{"text.failedTitle", func(t *Text) *string { return &t.FailedTitle }, maxShortText},
	{"text.failed", func(t *Text) *string { return &t.Failed }, maxLongText},
}

// OrDefault is t with every empty field taken from DefaultText.
func (t Text) OrDefault() Text {
	d := DefaultText
	for _, k := range textKeys {
		if v := k.field(&t); *v == "" {
			*v = *k.field(&d)
		}
	}
	return t
}

// brandingKeys are the other keys of the branding ConfigMap.
var brandingKeys = map[string]bool{"title": true, "logoURL": true, "primaryColor": true, "backgroundColor": true, "lang": true, "dir": true}

// colour is a CSS hex colour: anything else could escape the style sheet it is written into.
var colour = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// langTag is the shape of a BCP 47 language tag ("fr", "fr-CA", "zh-Hant-TW"): letters, digits
// and hyphens only.
var langTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,7}$`)

// plainText reports whether v can be shown as a line of text: valid UTF-8, at most max
// characters, and no control characters (a newline or a NUL would not show as the brand meant,
// and nothing in a ConfigMap value needs one).
func plainText(v string, max int) bool {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
		return false
	}
	return !strings.ContainsFunc(v, unicode.IsControl)
}

// Parse reads the branding ConfigMap, keeping what is valid and reporting the rest: a
// value refused keeps its default, so a mistake never leaves a page without its text.
func Parse(data map[string]string) (Branding, []error) {
	var b Branding
	var errs []error
	if t := strings.TrimSpace(data["title"]); t != "" {
		if !plainText(t, maxShortText) {
			errs = append(errs, fmt.Errorf("branding title must be at most %d characters, without control characters", maxShortText))
		} else {
			b.Title = t
		}
	}
	if l := strings.TrimSpace(data["logoURL"]); l != "" {
		if u, err := url.Parse(l); err != nil || u.Scheme != "https" || u.Host == "" || len(l) > 2048 {
			errs = append(errs, errors.New("branding logoURL must be an https URL"))
		} else {
			b.LogoURL = u.String()
		}
	}
	for _, c := range []struct {
		key string
		dst *string
	}{{"primaryColor", &b.PrimaryColor}, {"backgroundColor", &b.BackgroundColor}} {
		if v := strings.TrimSpace(data[c.key]); v != "" {
			if !colour.MatchString(v) {
				errs = append(errs, fmt.Errorf("branding %s must be #rgb or #rrggbb", c.key))
			} else {
				*c.dst = v
			}
		}
	}
	if l := strings.TrimSpace(data["lang"]); l != "" {
		if len(l) > 35 || !langTag.MatchString(l) {
			errs = append(errs, errors.New(`branding lang must be a language tag such as "fr" or "fr-CA"`))
		} else {
			b.Lang = l
		}
	}
	switch d := strings.TrimSpace(data["dir"]); d {
	case "", "ltr", "rtl":
		b.Dir = d
	default:
		errs = append(errs, errors.New(`branding dir must be "ltr" or "rtl"`))
	}
	for _, k := range textKeys {
		if v := strings.TrimSpace(data[k.key]); v != "" {
			if !plainText(v, k.max) {
				errs = append(errs, fmt.Errorf("branding %s must be at most %d characters, without control characters", k.key, k.max))
			} else {
				*k.field(&b.Text) = v
			}
		}
	}
	// A misspelt key would otherwise leave its default in place without a word.
	var unknown []string
	for key := range data {
		if !brandingKeys[key] && !slices.ContainsFunc(textKeys, func(k textKey) bool { return k.key == key }) {
			unknown = append(unknown, key)
		}
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		errs = append(errs, fmt.Errorf("branding key %q is not one the pages use: ignored", key))
	}
	return b, errs
}
