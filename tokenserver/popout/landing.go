package popout

import (
	"net/http"
	"net/url"

	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
)

// landingPage is the brand's own login page: the browser goes there with a sealed login
// request, and the brand's backend completes it through the issue API (POST
// /api/v1/authorizations) once its page has logged the person in.
type landingPage struct{ h *Handler }

// Begin sends the browser to the brand's login page with a sealed login request.
func (c landingPage) Begin(w http.ResponseWriter, r *http.Request, f Flow) {
	h, snap, req := c.h, f.Snap, f.Req
	lp := snap.Login.LandingPage
	id, err := codes.NewID()
	if err != nil {
		h.Log.Error(err, "Authorization failed: no login request id")
		h.errorPage(w, http.StatusInternalServerError, unavailable)
		return
	}
	sealed, err := authorize.SealLanding(snap, id, req, h.Now(), h.Now().Add(lp.RequestTTL))
	if err != nil {
		h.Log.Info("Authorization refused: the login request cannot be sealed", "clientID", req.ClientID, "reason", err.Error())
		h.errorPage(w, http.StatusBadRequest, linkNotValid)
		return
	}
	target := *lp.URL
	q := target.RawQuery
	if q != "" {
		q += "&"
	}
	target.RawQuery = q + "login_request=" + url.QueryEscape(sealed)
	redirect(w, target.String())
}
