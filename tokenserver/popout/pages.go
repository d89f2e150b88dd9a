package popout

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"

	"github.com/lpauth/lpauth-operator/api/branding"
)

//go:embed templates/page.html
var pageHTML string

// The template escapes every value it writes (html/template): the branding's text and title
// are shown as text, never read as HTML.
var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// css is inline and allowed by its hash, so the page fetches nothing and needs no 'unsafe-inline'.
// The two colours come from the branding ConfigMap (validated as hex colours) or the defaults.
const css = `body{font-family:system-ui,sans-serif;background:%s;color:#1b1d21;margin:0}` +
	`main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}` +
	`h1,h2{font-size:1.4rem;margin-top:0}.brand{font-size:1.15rem;text-align:center;margin-bottom:1.25rem}` +
	`label{display:block;margin-top:1rem;font-weight:600}` +
	`input{width:100%%;box-sizing:border-box;padding:.6rem;margin-top:.3rem;border:1px solid #6b7280;border-radius:4px;font-size:1rem}` +
	`button{margin-top:1.5rem;width:100%%;padding:.7rem;border:0;border-radius:4px;background:%s;color:#fff;font-size:1rem;cursor:pointer}` +
	`button:focus,input:focus{outline:3px solid #f59e0b;outline-offset:1px}.error{color:#b91c1c;font-weight:600}` +
	`.logo{display:block;max-width:100%%;max-height:4rem;margin:0 auto 1rem}`

// style is the page's style sheet for a branding.
func style(b branding.Branding) string {
	background, primary := "#f4f5f7", "#1d4ed8"
	if b.BackgroundColor != "" {
		background = b.BackgroundColor
	}
	if b.PrimaryColor != "" {
		primary = b.PrimaryColor
	}
	return fmt.Sprintf(css, background, primary)
}

// csp allows nothing but the inline style (by hash), the brand's logo, and the form. Browsers
// apply form-action to the redirects that follow a post too, so the login form also names the
// origin of LivePerson's window it will be redirected to (a registered redirect_uri: Check has
// vetted it).
func csp(styleSheet, formTarget, logo string) string {
	sum := sha256.Sum256([]byte(styleSheet))
	action := "'self'"
	if formTarget != "" {
		action += " " + formTarget
	}
	policy := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action " + action +
		"; frame-ancestors 'none'; base-uri 'none'"
	if o := origin(logo); o != "" {
		policy += "; img-src " + o
	}
	return policy
}

// problem is what a page tells the customer went wrong. Handlers pass a problem, never a
// sentence: the words come from the branding's text, written for a customer, so no technical
// reason (which check failed) can reach a page. The reason goes to the log.
type problem int

const (
	noProblem problem = iota
	// Alerts above the login form.
	wrongCredentials
	tooManyAttempts
	// Error pages.
	linkNotValid // the link LivePerson's window opened cannot be used: malformed, unknown client or redirect_uri
	expired      // a form or an upstream login outlived its time, or came from another browser
	unavailable  // this way of signing in cannot work right now
	notAllowed   // the authenticating proxy did not vouch for the person
	failed       // the person could not be signed in for another reason
)

// words are p's heading (none for a login form's alert) and sentence in t.
func (p problem) words(t branding.Text) (heading, message string) {
	switch p {
	case wrongCredentials:
		return "", t.WrongCredentials
	case tooManyAttempts:
		return "", t.TooManyAttempts
	case linkNotValid:
		return t.LinkNotValidTitle, t.LinkNotValid
	case expired:
		return t.ExpiredTitle, t.Expired
	case unavailable:
		return t.UnavailableTitle, t.Unavailable
	case notAllowed:
		return t.NotAllowedTitle, t.NotAllowed
	case failed:
		return t.FailedTitle, t.Failed
	}
	return "", ""
}

// loginForm is the login form's content.
type loginForm struct {
	Action, Request, CSRF string
	// target is the origin the form's post redirects to, for the CSP.
	target string
}

// view is what the page template reads.
type view struct {
	Lang, Dir string
	// Title is the tab's; Brand, the branding's title, is also the page's first heading.
	Title, Brand     string
	Heading, Message string
	Logo             string
	CSS              template.CSS
	Text             branding.Text
	// Form is set on the login form only.
	Form *loginForm
}

// writePage renders the login form (form set, with p its alert) or an error page (form nil),
// branded, with headers that keep it out of caches and frames.
func (h *Handler) writePage(w http.ResponseWriter, status int, form *loginForm, p problem) {
	var b branding.Branding
	if snap := h.Source.Snapshot(); snap != nil {
		b = snap.Branding
	}
	styleSheet := style(b)
	v := view{Lang: b.Lang, Dir: b.Dir, Brand: b.Title, Logo: b.LogoURL, CSS: template.CSS(styleSheet), Text: b.Text.OrDefault(), Form: form}
	if v.Lang == "" {
		v.Lang = "en"
	}
	v.Heading, v.Message = p.words(v.Text)
	if form != nil {
		v.Heading = v.Text.SignInTitle
	}
	v.Title = v.Heading
	if b.Title != "" {
		v.Title += " · " + b.Title
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		h.Log.Error(err, "Rendering a page failed")
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	target := ""
	if form != nil {
		target = form.target
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Content-Security-Policy", csp(styleSheet, target, v.Logo))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows p to the customer. Callers log the technical reason first, if there is one.
func (h *Handler) errorPage(w http.ResponseWriter, status int, p problem) {
	h.writePage(w, status, nil, p)
}
