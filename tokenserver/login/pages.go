package login

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"

	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

//go:embed templates/page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// css is inline and allowed by its hash, so the page fetches nothing and needs no 'unsafe-inline'.
// The two colours come from the branding ConfigMap (validated as hex colours) or the defaults.
const css = `body{font-family:system-ui,sans-serif;background:%s;color:#1b1d21;margin:0}` +
	`main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}` +
	`h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}` +
	`input{width:100%%;box-sizing:border-box;padding:.6rem;margin-top:.3rem;border:1px solid #6b7280;border-radius:4px;font-size:1rem}` +
	`button{margin-top:1.5rem;width:100%%;padding:.7rem;border:0;border-radius:4px;background:%s;color:#fff;font-size:1rem;cursor:pointer}` +
	`button:focus,input:focus{outline:3px solid #f59e0b;outline-offset:1px}.error{color:#b91c1c;font-weight:600}` +
	`.logo{display:block;max-width:100%%;max-height:4rem;margin:0 auto 1rem}`

// style is the page's style sheet for a branding.
func style(b snapshot.Branding) string {
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

type page struct {
	Kind, Title, Heading, Message string
	Logo                          string
	// Login form only.
	Action, Request, CSRF string
	CSS                   template.CSS
	// FormTarget is the origin the form's post redirects to.
	FormTarget string
}

// writePage renders a page, branded, with headers that keep it out of caches and frames.
func (h *Handler) writePage(w http.ResponseWriter, status int, p page) {
	var b snapshot.Branding
	if snap := h.Source.Snapshot(); snap != nil {
		b = snap.Branding
	}
	styleSheet := style(b)
	p.CSS, p.Logo = template.CSS(styleSheet), b.LogoURL
	switch {
	case b.Title != "" && p.Title == "":
		p.Title = b.Title
	case b.Title != "":
		p.Title = p.Title + " · " + b.Title
	case p.Title == "":
		p.Title = "Sign in"
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Content-Security-Policy", csp(styleSheet, p.FormTarget, p.Logo))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) errorPage(w http.ResponseWriter, status int, heading, message string) {
	h.writePage(w, status, page{Kind: "error", Title: heading, Heading: heading, Message: message})
}
