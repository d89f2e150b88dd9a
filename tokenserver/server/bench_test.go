package server_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpauth/lpauth-operator/api/lpsdes"
	"github.com/lpauth/lpauth-operator/tokenserver/codes"
	"github.com/lpauth/lpauth-operator/tokenserver/idtoken"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

// rawSignRate is how many id_token-sized payloads the snapshot's signer signs per second on all
// cores, given four callers per core as HTTP load gives it: the physical limit of /token with
// this signer.
func rawSignRate(b *testing.B, f *fixture, d time.Duration) float64 {
	payload := []byte(`{"iss":"` + f.issuer + `","sub":"cust-8f14e45f","aud":"lp-code-client","iat":1800000000,"exp":1800003600,"lp_sdes":[{"type":"ctmrinfo","info":{"ctype":"vip"}}]}`)
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := f.snap.Signer.Sign(payload); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// BenchmarkTokenEndpoint redeems pre-issued codes at /token over loopback HTTP on all cores and
// reports the rate next to the raw signing rate measured in the same run, and their ratio.
//
//	go test -run '^$' -bench TokenEndpoint -benchtime 3s ./tokenserver/server/
func BenchmarkTokenEndpoint(b *testing.B) {
	f := newFixture(b, nil)
	raw := rawSignRate(b, f, 2*time.Second)
	codeList := make([]string, b.N)
	for i := range codeList {
		p := codes.Payload{ClientID: codeClientID, Subject: "cust-8f14e45f", Expiry: time.Now().Add(time.Hour).Unix(), RedirectURI: lpRedirect}
		p.ID, _ = codes.NewID()
		codeList[i], _ = f.snap.Codes.Seal(p)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(4) // keep both cores busy while requests wait on the network stack
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code := codeList[next.Add(1)-1]
			req, _ := http.NewRequest(http.MethodPost, f.issuer+"/token", strings.NewReader(form(code, lpRedirect)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(codeClientID, codeSecret)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // read to the end, or the connection is not reused
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "tokens/s")
	b.ReportMetric(raw, "signs/s")
	b.ReportMetric(rate/raw, "token/sign")
}

// BenchmarkJWKS serves the pre-rendered JWKS over loopback HTTP.
//
//	go test -run '^$' -bench JWKS ./tokenserver/server/
func BenchmarkJWKS(b *testing.B) {
	f := newFixture(b, nil)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(f.issuer + "/.well-known/jwks.json")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // read to the end, or the connection is not reused
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkTokenHandler redeems codes like LivePerson's (profile claims and lp_sdes) through the
// server's handler without the network, on one goroutine: the CPU and allocations of /token
// besides HTTP, signature included.
//
//	go test -run '^$' -bench TokenHandler -benchmem -tags openssl ./tokenserver/server/
func BenchmarkTokenHandler(b *testing.B) {
	f := newFixture(b, nil)
	redeemInProcess(b, f)
}

// redeemInProcess redeems b.N codes like LivePerson's through the server's handler, without the
// network, timing only the redemptions.
func redeemInProcess(b *testing.B, f *fixture) {
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = form(liveCode(b, f), lpRedirect)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(codeClientID, codeSecret)
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// unsignedSigner returns a fixed signature: what is left of /token's CPU without the RSA.
type unsignedSigner struct{ signer.JWTSigner }

func (unsignedSigner) SignCompact(payload []byte) (string, error) {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2lnbmF0dXJl", nil
}

// BenchmarkTokenHandlerUnsigned is BenchmarkTokenHandler without the signature: the CPU and
// allocations /token spends besides the RSA, which is what separates /token's rate from the
// signer's; for a client with an lp_sdes template (merged at redemption) and without one.
//
//	go test -run '^$' -bench TokenHandlerUnsigned -benchmem -cpuprofile cpu.out ./tokenserver/server/
func BenchmarkTokenHandlerUnsigned(b *testing.B) {
	for _, template := range []bool{true, false} {
		b.Run(fmt.Sprintf("template=%v", template), func(b *testing.B) {
			f := newFixture(b, nil)
			f.snap.Signer = unsignedSigner{f.snap.Signer}
			if !template {
				f.snap.Clients[codeClientID].SDEs = nil
			}
			redeemInProcess(b, f)
		})
	}
}

// liveCode seals a code as the issue API does for LivePerson's users: profile claims and
// lp_sdes, the lp_sdes validated and written for the token.
func liveCode(b *testing.B, f *fixture) string {
	sdes, err := lpsdes.Parse([]byte(`[{"type":"ctmrinfo","info":{"customerId":"8271","ctype":"gold","companySize":500}},{"type":"personal","personal":{"firstname":"Ada","lastname":"Lovelace"}}]`))
	if err != nil {
		b.Fatal(err)
	}
	p := codes.Payload{ClientID: codeClientID, Subject: "cust-8f14e45f", Expiry: time.Now().Add(time.Hour).Unix(), RedirectURI: lpRedirect,
		Claims: []byte(`{"given_name":"Ada","family_name":"Lovelace","email":"ada@brand.example","phone_number":"+15555550100"}`), SDEsWritten: true}
	if p.LPSdes, err = idtoken.CodeSDEs(sdes); err != nil {
		b.Fatal(err)
	}
	p.ID, _ = codes.NewID()
	code, err := f.snap.Codes.Seal(p)
	if err != nil {
		b.Fatal(err)
	}
	return code
}
