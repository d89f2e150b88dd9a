package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const lpRedirect = "https://liveperson.net"

// outcome counts what a load saw.
type outcome struct {
	requests, failed, unavailable atomic.Int64
	// signInAgain counts redemptions refused because the code was issued before the replay
	// store's records begin (after Redis lost claims): the customer signs in again. Counted as
	// failed except where a trial says this is the price of the fault.
	signInAgain atomic.Int64
	// slowest is the longest a request took, in nanoseconds (a hanging connection shows here).
	slowest atomic.Int64
	mu      sync.Mutex
	errs    map[string]int // a sample of failures, by kind
}

func (o *outcome) fail(kind string) {
	o.failed.Add(1)
	o.mu.Lock()
	if o.errs == nil {
		o.errs = map[string]int{}
	}
	o.errs[kind]++
	o.mu.Unlock()
}

func (o *outcome) took(d time.Duration) {
	for {
		old := o.slowest.Load()
		if int64(d) <= old || o.slowest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (o *outcome) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("%d requests, %d failed %v, %d answered 503, %d refused as issued before the records begin, slowest %s", o.requests.Load(), o.failed.Load(), o.errs, o.unavailable.Load(), o.signInAgain.Load(),
		time.Duration(o.slowest.Load()).Round(time.Millisecond))
}

// lp is LivePerson and the brand's backend: it gets codes from the issue API and redeems them at
// /token, as the real ones do, through base (the proxy in front of the token servers).
type lp struct {
	base, clientID, secret, issueToken string
	http                               *http.Client
}

func newLP(c *cluster, base string) *lp {
	return &lp{base: base, clientID: c.clientID, secret: c.secret, issueToken: c.issueToken,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// code asks the issue API for a code.
func (l *lp) code(i int64) (string, int, error) {
	body := fmt.Appendf(nil, `{"client_id":%q,"sub":"customer-%d","redirect_uri":%q}`, l.clientID, i, lpRedirect)
	req, _ := http.NewRequest(http.MethodPost, l.base+"/api/v1/codes", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.issueToken)
	b, status, err := l.do(req)
	if err != nil || status != http.StatusOK {
		return "", status, err
	}
	var out struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", status, err
	}
	return out.Code, status, nil
}

// redeem redeems a code at /token and returns the id_token.
func (l *lp) redeem(code string) (string, int, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {lpRedirect}}
	req, _ := http.NewRequest(http.MethodPost, l.base+"/token", bytes.NewReader([]byte(form.Encode())))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(l.clientID), url.QueryEscape(l.secret))
	b, status, err := l.do(req)
	if err != nil || status != http.StatusOK {
		return string(b), status, err // the error answer, for count
	}
	var out struct {
		IDToken string `json:"id_token"`
	}
	return out.IDToken, status, json.Unmarshal(b, &out)
}

func (l *lp) do(req *http.Request) ([]byte, int, error) {
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// redemptions runs workers that each get a code and redeem it, until stop closes. Every
// request counts; a code is asked for again only after its redemption, so each answer says
// whether that one redemption worked. A code redeemed twice is counted in doubles (each code is
// presented a second time, which must fail).
func (l *lp) redemptions(workers int, stop <-chan struct{}, o *outcome, doubles *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	var n atomic.Int64
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := n.Add(1)
				start := time.Now()
				code, status, err := l.code(i)
				o.requests.Add(1)
				o.took(time.Since(start))
				if !l.count(o, status, err, "code") {
					continue
				}
				start = time.Now()
				body, status, err := l.redeem(code)
				o.requests.Add(1)
				o.took(time.Since(start))
				if status == http.StatusBadRequest && strings.Contains(body, "replay store restarted") {
					o.signInAgain.Add(1)
					continue
				}
				if !l.count(o, status, err, "token") {
					continue
				}
				if doubles != nil {
					if _, status, err := l.redeem(code); err == nil && status == http.StatusOK {
						doubles.Add(1)
					}
				}
			}
		})
	}
	return &wg
}

// count records one answer; it reports whether it was a success. A 503 is counted apart: it
// is the token server saying it cannot answer now (its replay store is down), which the trial
// judges.
func (l *lp) count(o *outcome, status int, err error, what string) bool {
	switch {
	case err != nil:
		o.fail(what + ": " + shortErr(err))
	case status == http.StatusServiceUnavailable:
		o.unavailable.Add(1)
	case status != http.StatusOK:
		o.fail(fmt.Sprintf("%s: %d", what, status))
	default:
		return true
	}
	return false
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[len(s)-60:]
	}
	return s
}

// implicitToken asks the issue API for a signed JWT (the implicit flow).
func (l *lp) implicitToken() (string, int, error) {
	body := fmt.Appendf(nil, `{"client_id":%q,"sub":"customer-0"}`, l.clientID)
	req, _ := http.NewRequest(http.MethodPost, l.base+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.issueToken)
	b, status, err := l.do(req)
	return string(b), status, err
}
