package popout

import (
	"net/http"
	"net/url"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/clientaddr"
	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
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
// an unknown user as for a wrong password when there are no users to borrow a hash from
// (decoyHash). It is a constant (bcrypt of "lpauth-no-such-user" at
// bcrypt.DefaultCost; TestDummyHashCostsAsMuchAsARealOne checks it): computed at start it cost
// every process, operator and token server alike, 60-80 ms of CPU before serving anything.
var dummyHash = []byte("$2a$10$YvaqNFQIzv.ZYDbnijzMhe5bHWEbO4FFM1.zwkhUzfYqrYyV0imEe")

// staticUsers is the demo login form over an htpasswd Secret: Begin shows the form, which posts
// to its own route (LoginPath, served by Handler.Login).
type staticUsers struct{ h *Handler }

// Begin shows the login form.
func (c staticUsers) Begin(w http.ResponseWriter, r *http.Request, f Flow) {
	c.h.showForm(w, r, f.Snap, f.Req, noProblem, http.StatusOK)
}

// showForm shows the login form for req, with alert above it (noProblem for none).
func (h *Handler) showForm(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, req authorize.Request, alert problem, status int) {
	token := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		token = c.Value // keep it: another tab's form must keep working
	}
	if token == "" {
		var err error
		if token, err = randomToken(); err != nil {
			h.Log.Error(err, "Login form failed: no CSRF token")
			h.errorPage(w, http.StatusInternalServerError, unavailable)
			return
		}
	}
	sealed, err := snap.Codes.SealValue(purposeForm, formState{Req: req, CSRF: digest(token)}, h.Now().Add(formTTL))
	if err != nil {
		h.Log.Info("Authorization refused: the login form cannot be sealed", "clientID", req.ClientID, "reason", err.Error())
		h.errorPage(w, http.StatusBadRequest, linkNotValid)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: h.Prefix + "/authorize", MaxAge: int(formTTL.Seconds()),
		HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	h.writePage(w, status, &loginForm{Action: h.Prefix + LoginPath, Request: sealed, CSRF: token, target: origin(req.RedirectURI)}, alert)
}

// Login serves POST /authorize/login, the staticUsers form.
func (h *Handler) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.Log.Info("Login form refused: not a POST", "method", r.Method)
			h.errorPage(w, http.StatusMethodNotAllowed, linkNotValid)
			return
		}
		snap := h.Source.Snapshot()
		if snap == nil || snap.Login == nil || snap.Login.StaticUsers == nil {
			h.Log.Info("Login form refused: spec.login is not staticUsers")
			h.errorPage(w, http.StatusServiceUnavailable, unavailable)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.Log.Info("Login form refused: the form cannot be read", "reason", err.Error())
			h.errorPage(w, http.StatusBadRequest, failed)
			return
		}
		cookie, err := r.Cookie(csrfCookie)
		posted := r.PostForm.Get("csrf")
		var st formState
		if err != nil || posted == "" || !equal(cookie.Value, posted) ||
			snap.Codes.OpenValue(purposeForm, r.PostForm.Get("request"), h.Now(), &st) != nil || !equal(st.CSRF, digest(posted)) {
			h.Log.Info("Login form refused: missing, expired or forged form")
			h.errorPage(w, http.StatusForbidden, expired)
			return
		}
		// The client may have changed since the form was shown.
		client, aerr := authorize.Check(snap, st.Req)
		if aerr != nil {
			h.refused(w, r, st.Req, aerr)
			return
		}
		user, password := r.PostForm.Get("username"), r.PostForm.Get("password")
		limits := newLoginLimits(h.Limiter, user, password, limiter.Network(clientaddr.Of(r, snap.TrustedProxies)))
		if ok, wait := limits.allow(); !ok {
			h.Log.Info("Login refused: too many failed attempts", "clientID", client.ID)
			w.Header().Set("Retry-After", oauth.RetryAfterSeconds(wait))
			h.showForm(w, r, snap, st.Req, tooManyAttempts, http.StatusTooManyRequests)
			return
		}
		if limits.tooLong || !checkPassword(snap.Login.StaticUsers, user, password) {
			limits.fail()
			h.Log.Info("Login refused: wrong user name or password", "clientID", client.ID, "tooLong", limits.tooLong)
			h.showForm(w, r, snap, st.Req, wrongCredentials, http.StatusUnauthorized)
			return
		}
		h.complete(w, r, snap, client, st.Req, identity(client, user, map[string]string{"preferred_username": user}))
	})
}

// Bounds checked before any other work. No account has a longer name worth a hash and a bcrypt
// per attempt, and bcrypt reads at most 72 bytes of a password.
const (
	maxUserName = 256
	maxPassword = 72
)

// compareHashAndPassword is bcrypt's, replaced by tests that count the calls.
var compareHashAndPassword = bcrypt.CompareHashAndPassword

// decoyHash is what an unknown user's password is checked against: one of the real users'
// hashes, so the check costs what a known user's does whatever cost the htpasswd was made with
// (htpasswd -B defaults to cost 5, 15 times cheaper than bcrypt.DefaultCost: against dummyHash
// a wrong password for a real user answered in a fraction of the time an unknown user took).
// The answer is false whatever the comparison says.
func decoyHash(users *snapshot.StaticUsers) []byte {
	for _, h := range users.Hashes {
		return h
	}
	return dummyHash
}

// checkPassword compares in constant time for known and unknown users alike.
func checkPassword(users *snapshot.StaticUsers, user, password string) bool {
	hash, ok := users.Hashes[user]
	if !ok {
		_ = compareHashAndPassword(decoyHash(users), []byte(password))
		return false
	}
	return compareHashAndPassword(hash, []byte(password)) == nil
}

// loginLimits are the counters of one login attempt, all in the handler's FailureLimiter (one
// memory bound), with rules derived from its Rule (by default 5 failures, then one per 12 s):
//
//   - per user name and address, the Rule: one place guessing one person's password;
//   - per address, four times the burst at the same pace: one place spraying many names, looser
//     because the people behind one NAT share it;
//   - per user name from everywhere, twenty times the burst draining ten times faster: many
//     places guessing one password. Over it, only addresses that already failed for that name are
//     refused, so a person signing in from their own address is never locked out by others'
//     failures, while each attacking address gets one guess per drained failure.
//
// Addresses are the client's (clientaddr: forwarded-for believed only from trusted proxies), so
// behind an ingress one attacker holds up only their own address. An over-long user name or
// password counts against the address alone: it names no account, and is never hashed.
type loginLimits struct {
	l                      *limiter.FailureLimiter
	tooLong                bool
	userAddr, addr, user   limiter.Key
	base, perAddr, perUser limiter.Rule
}

func newLoginLimits(l *limiter.FailureLimiter, user, password, addr string) loginLimits {
	b := l.Rule
	k := loginLimits{l: l, tooLong: len(user) > maxUserName || len(password) > maxPassword, addr: limiter.KeyOf("login-addr", addr),
		base: b, perAddr: limiter.Rule{Burst: 4 * b.Burst, Interval: b.Interval}, perUser: limiter.Rule{Burst: 20 * b.Burst, Interval: b.Interval / 10}}
	if !k.tooLong {
		k.userAddr, k.user = limiter.KeyOf("login-user-addr", user, addr), limiter.KeyOf("login-user", user)
	}
	return k
}

// allow reports whether the attempt may be checked, and if not, how long to wait.
func (k loginLimits) allow() (bool, time.Duration) {
	ok, wait := k.l.Allow(k.addr, k.perAddr)
	if !ok || k.tooLong {
		return ok, wait
	}
	if ok, wait := k.l.Allow(k.userAddr, k.base); !ok {
		return false, wait
	}
	if k.l.Failing(k.userAddr) {
		return k.l.Allow(k.user, k.perUser)
	}
	return true, 0
}

// fail counts a failed attempt.
func (k loginLimits) fail() {
	k.l.Fail(k.addr, k.perAddr)
	if !k.tooLong {
		k.l.Fail(k.userAddr, k.base)
		k.l.Fail(k.user, k.perUser)
	}
}

// origin is scheme://host[:port] of a URL, for the CSP.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
