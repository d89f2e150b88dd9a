package authorize

import (
	"strings"
	"time"

	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// purposeLanding marks a sealed landing-page login request: a value sealed for another purpose
// never opens as one.
const purposeLanding = "lpauth-landing-v1"

// LandingRequest is the login request handed to the brand's landing page, sealed: the page
// cannot read or change it, only pass it back (through its backend, to POST
// /api/v1/authorizations) with the person's identity. The pop-out window seals it, the issue
// API opens it.
type LandingRequest struct {
	// ID makes each request single-use: the issue API claims it in the replay store.
	ID  string  `json:"id"`
	Req Request `json:"r"`
	// Issued is when it was sealed (Unix seconds; absent in requests sealed before it was
	// recorded), for the replay store (see replay.Store).
	Issued int64 `json:"iat,omitempty"`
}

// SealLanding seals req for the landing page under id (codes.NewID), issued now and valid until
// expiry.
func SealLanding(snap *snapshot.Snapshot, id string, req Request, now, expiry time.Time) (string, error) {
	return snap.Codes.SealValue(purposeLanding, LandingRequest{ID: id, Req: req, Issued: now.Unix()}, expiry)
}

// OpenLanding opens a sealed landing request, refusing it at or after its expiry.
func OpenLanding(snap *snapshot.Snapshot, sealed string, now time.Time) (LandingRequest, error) {
	var lr LandingRequest
	err := snap.Codes.OpenValue(purposeLanding, strings.TrimSpace(sealed), now, &lr)
	return lr, err
}
