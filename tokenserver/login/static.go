package login

import (
	"net"
	"net/http"
	"net/url"

	"golang.org/x/crypto/bcrypt"

	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// csrfCookie holds the double-submit token of the login form. The sealed form request also
// carries its digest, so a form sealed for one browser never posts from another.
const csrfCookie = "lpauth_csrf"

// maxFormBytes bounds a login form post: the sealed request carries LivePerson's state.
const maxFormBytes = 64 << 10

// formState is what the login form carries, sealed.
type formState struct {
	Req  authorize.Request `json:"r"`
	CSRF string            `json:"c"`
}

// dummyHash is compared against when the user does not exist, so the answer takes as long for
// an unknown user as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("lpauth-no-such-user"), bcrypt.DefaultCost)

func (h *Handler) showForm(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, req authorize.Request, message string, status int) {
	token := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		token = c.Value // keep it: another tab's form must keep working
	}
	if token == "" {
		var err error
		if token, err = randomToken(); err != nil {
			h.errorPage(w, http.StatusInternalServerError, "Sign-in unavailable", "Please try again.")
			return
		}
	}
	sealed, err := snap.Codes.SealValue(purposeForm, formState{Req: req, CSRF: digest(token)}, h.Now().Add(formTTL))
	if err != nil {
		h.errorPage(w, http.StatusBadRequest, "Sign-in link not valid", "This sign-in link is too long.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: h.Prefix + "/authorize", MaxAge: int(formTTL.Seconds()),
		HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	h.writePage(w, status, page{Kind: "login", Title: "Sign in", Action: h.Prefix + LoginPath, Request: sealed, CSRF: token, Message: message, FormTarget: origin(req.RedirectURI)})
}

// Login serves POST /authorize/login, the staticUsers form.
func (h *Handler) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.errorPage(w, http.StatusMethodNotAllowed, "Sign-in link not valid", "Use the sign-in form.")
			return
		}
		snap := h.Source.Snapshot()
		if snap == nil || snap.Login == nil || snap.Login.StaticUsers == nil {
			h.errorPage(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Signing in with a password is not available here.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
			return
		}
		cookie, err := r.Cookie(csrfCookie)
		posted := r.PostForm.Get("csrf")
		var st formState
		if err != nil || posted == "" || !equal(cookie.Value, posted) ||
			snap.Codes.OpenValue(purposeForm, r.PostForm.Get("request"), h.Now(), &st) != nil || !equal(st.CSRF, digest(posted)) {
			h.Log.Info("Login form refused: missing, expired or forged form")
			h.errorPage(w, http.StatusForbidden, "Sign-in expired", "This sign-in form has expired or was not sent by this page. Go back to the chat window and open sign-in again.")
			return
		}
		// The client may have changed since the form was shown.
		client, aerr := authorize.Check(snap, st.Req)
		if aerr != nil {
			h.refused(w, r, st.Req, aerr)
			return
		}
		user, password := r.PostForm.Get("username"), r.PostForm.Get("password")
		keys := []string{"user:" + user, "addr:" + remoteHost(r)}
		for _, k := range keys {
			if !h.Limiter.Allow(k) {
				h.Log.Info("Login refused: too many failed attempts", "clientID", client.ID)
				h.showForm(w, r, snap, st.Req, "Too many failed attempts. Wait a minute and try again.", http.StatusTooManyRequests)
				return
			}
		}
		if !checkPassword(snap.Login.StaticUsers, user, password) {
			for _, k := range keys {
				h.Limiter.Fail(k)
			}
			h.Log.Info("Login refused: wrong user name or password", "clientID", client.ID)
			h.showForm(w, r, snap, st.Req, "Wrong user name or password.", http.StatusUnauthorized)
			return
		}
		h.complete(w, r, snap, client, st.Req, identity(client, user, map[string]string{"preferred_username": user}))
	})
}

// checkPassword compares in constant time for known and unknown users alike.
func checkPassword(users *snapshot.StaticUsers, user, password string) bool {
	hash, ok := users.Hashes[user]
	if !ok || len(password) > 72 {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// origin is scheme://host[:port] of a URL, for the CSP.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
