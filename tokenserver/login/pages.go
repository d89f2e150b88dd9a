package login

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
)

//go:embed templates/page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// css is inline and allowed by its hash, so the page fetches nothing and needs no 'unsafe-inline'.
const css = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1d21;margin:0}` +
	`main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}` +
	`h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}` +
	`input{width:100%;box-sizing:border-box;padding:.6rem;margin-top:.3rem;border:1px solid #6b7280;border-radius:4px;font-size:1rem}` +
	`button{margin-top:1.5rem;width:100%;padding:.7rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;font-size:1rem;cursor:pointer}` +
	`button:focus,input:focus{outline:3px solid #f59e0b;outline-offset:1px}.error{color:#b91c1c;font-weight:600}`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// csp allows nothing but the inline style and the form. Browsers apply form-action to the
// redirects that follow a post too, so the login form also names the origin of LivePerson's
// window it will be redirected to (a registered redirect_uri: Check has vetted it).
func csp(formTarget string) string {
	action := "'self'"
	if formTarget != "" {
		action += " " + formTarget
	}
	return "default-src 'none'; style-src " + styleHash + "; form-action " + action + "; frame-ancestors 'none'; base-uri 'none'"
}

type page struct {
	Kind, Title, Heading, Message string
	// Login form only.
	Action, Request, CSRF string
	CSS                   template.CSS
	// FormTarget is the origin the form's post redirects to.
	FormTarget string
}

// writePage renders a page with headers that keep it out of caches and frames.
func writePage(w http.ResponseWriter, status int, p page) {
	p.CSS = template.CSS(css)
	if p.Title == "" {
		p.Title = "Sign in"
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", csp(p.FormTarget))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func errorPage(w http.ResponseWriter, status int, heading, message string) {
	writePage(w, status, page{Kind: "error", Title: heading, Heading: heading, Message: message})
}
