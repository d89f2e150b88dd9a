package issueapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/oauth"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
)

// maxAuthorizationBody bounds POST /api/v1/authorizations: a login request plus claims.
const maxAuthorizationBody = 96 << 10

// authorizationRequest is the body the brand's backend posts once the person is logged in.
type authorizationRequest struct {
	LoginRequest string            `json:"login_request"`
	Subject      string            `json:"sub"`
	Claims       map[string]string `json:"claims,omitempty"`
	LPSdes       json.RawMessage   `json:"lp_sdes,omitempty"`
}

// Authorizations serves POST /api/v1/authorizations: the brand's backend completes a login
// request for the person its landing page logged in, and gets the exact URL to send the browser
// to. Each login request completes once.
func (h *Handler) Authorizations() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := oauth.Result{Endpoint: oauth.Endpoint(r)}
		body, err := h.authorization(r, &res)
		Respond(w, r, h.Log, h.Observe, res, body, err)
	})
}

func (h *Handler) authorization(r *http.Request, res *oauth.Result) (map[string]string, *oauth.Error) {
	snap := h.Source.Snapshot()
	if err := Check(r, snap); err != nil {
		return nil, err
	}
	if snap.Login == nil || snap.Login.LandingPage == nil {
		return nil, Bad("this token server does not use a landing page (spec.login.landingPage)")
	}
	var body authorizationRequest
	if err := DecodeJSON(r, maxAuthorizationBody, &body); err != nil {
		return nil, err
	}
	st, err := authorize.OpenLanding(snap, body.LoginRequest, h.Now())
	if err != nil {
		return nil, Bad("login_request is invalid or expired: start again from the chat window")
	}
	res.ClientID = st.Req.ClientID
	client, aerr := authorize.Check(snap, st.Req)
	if aerr != nil {
		if aerr.Page {
			return nil, Bad("the login request no longer matches a client: " + aerr.Description)
		}
		return map[string]string{"redirect_to": authorize.ErrorLocation(st.Req, aerr)}, nil
	}
	res.Flow = st.Req.ResponseType
	sdes, perr := lpsdes.Parse(body.LPSdes)
	if perr != nil {
		return nil, Bad(perr.Error())
	}
	id := idtoken.Identity{Subject: body.Subject, Claims: body.Claims, SDEs: sdes}
	if err := id.Validate(); err != nil {
		return nil, Bad(err.Error())
	}
	if h.Replay == nil {
		// Without it a login request could complete twice: refuse rather than serve unsafely.
		return nil, &oauth.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Reason: "no replay store", Description: "try again"}
	}
	// Claimed last: a request refused for a fixable mistake (no sub) can be sent again.
	issued := time.Unix(st.Issued, 0)
	if st.Issued == 0 {
		issued = h.Now().Add(-snap.Login.LandingPage.RequestTTL) // sealed before iat was recorded
	}
	first, err := h.Replay.Claim(r.Context(), "login:"+st.ID, issued, h.Now().Add(snap.Login.LandingPage.RequestTTL+time.Minute))
	if errors.Is(err, replay.ErrBeforeRecords) {
		return nil, Bad("login_request was issued before the replay store's records begin: start again from the chat window")
	}
	if err != nil {
		return nil, &oauth.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Reason: "replay store: " + err.Error(), Description: "try again"}
	}
	if !first {
		return nil, Bad("login_request was already used: start again from the chat window")
	}
	loc, err := authorize.Complete(snap, client, st.Req, id, h.Now())
	if err != nil {
		return nil, Bad(err.Error())
	}
	return map[string]string{"redirect_to": loc}, nil
}
