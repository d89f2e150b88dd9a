package authorize_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/authorize"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// A code completed for a logged-in user (a landing page's /api/v1/authorizations) carries its
// lp_sdes as the token will: merged (ctmrinfo first, whatever order the brand sent) and marked
// so, or a redemption that splices them would put them in the brand's order.
func TestCompletedCodesCarryTheirSDEsAsTheTokenWill(t *testing.T) {
	t.Parallel()
	sealer, err := codes.NewSealer(bytes.Repeat([]byte{9}, codes.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	snap := &snapshot.Snapshot{Codes: sealer, CodeTTL: time.Minute}
	sdes, err := lpsdes.Parse([]byte(`[{"type":"personal","personal":{"firstname":"Ada"}},{"type":"ctmrinfo","info":{"ctype":"gold & <vip>"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := authorize.Complete(snap, &snapshot.Client{ID: "c"}, authorize.Request{ResponseType: authorize.ResponseCode, RedirectURI: "https://liveperson.net"},
		idtoken.Identity{Subject: "u", SDEs: sdes}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sealer.Open(u.Query().Get("code"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"info":{"ctype":"gold \u0026 \u003cvip\u003e"},"type":"ctmrinfo"},{"personal":{"firstname":"Ada"},"type":"personal"}]`
	if !p.SDEsWritten || string(p.LPSdes) != want {
		t.Fatalf("code's lp_sdes: written %v, %s; want written, %s", p.SDEsWritten, p.LPSdes, want)
	}

	// lp_sdes that pass the brand's 8 KB but not once escaped are refused here, not at redemption.
	big, err := lpsdes.Parse([]byte(`[{"type":"ctmrinfo","info":{"ctype":"` + strings.Repeat("&", 500) + `","cstatus":"` + strings.Repeat("<", 500) +
		`","role":"` + strings.Repeat(">", 500) + `","userName":"` + strings.Repeat("&", 500) + `"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = authorize.Complete(snap, &snapshot.Client{ID: "c"}, authorize.Request{ResponseType: authorize.ResponseCode}, idtoken.Identity{Subject: "u", SDEs: big}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "as the token carries them") {
		t.Fatalf("lp_sdes of 12 KB once escaped: got %v, want refused", err)
	}
}
