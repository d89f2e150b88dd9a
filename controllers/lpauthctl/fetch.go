package lpauthctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// maxBody bounds what is read from the token server: its documents are a few KB.
const maxBody = 1 << 20

// newHTTPClient is the client check and try reach the token server with. It follows no
// redirect: try sends the issue-API credential and the client secret, and net/http would send
// them on (the body again on a 307 or 308, the Authorization header to the same host, even from
// https to http). A redirect is reported instead, as a failure: LivePerson would not follow one
// to the token endpoint or the JWKS either.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// base is where the token server is reached: --issuer-url, else the issuer itself. Either must
// be https, or http on loopback only: the rule the TokenServer CRD has for the issuer (a
// port-forward is on loopback).
func (c *cli) base(ts *v1alpha1.TokenServer) (string, error) {
	if c.opts.issuerURL != "" {
		u, err := url.Parse(c.opts.issuerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", usagef("--issuer-url %q is not an http(s) URL", c.opts.issuerURL)
		}
		if u.Scheme == "http" && !loopback(u.Hostname()) {
			return "", usagef("--issuer-url %q is http on a host that is not loopback: only https, or http on localhost, 127.0.0.1 or ::1 (a port-forward), as for the issuer", c.opts.issuerURL)
		}
		return strings.TrimSuffix(c.opts.issuerURL, "/"), nil
	}
	u, err := url.Parse(ts.Spec.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("TokenServer %s: spec.issuer %q is not an http(s) URL", ts.Name, ts.Spec.Issuer)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return "", fmt.Errorf("TokenServer %s: spec.issuer %q is http on a host that is not loopback, which the CRD refuses: not reached in clear text", ts.Name, ts.Spec.Issuer)
	}
	return strings.TrimSuffix(ts.Spec.Issuer, "/"), nil
}

// loopback reports whether host (without port or brackets) is this machine: localhost or a
// loopback address.
func loopback(host string) bool {
	// Exactly "localhost": Go's proxy settings skip that name and loopback addresses only, so
	// "localhost." could send the credentials through an HTTP_PROXY in clear text.
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// credentialsHost is the host try sends the issue-API credential and the client secret to, at
// base. They belong to the issuer: another host gets them only when it is loopback (a
// port-forward) or --send-credentials-to names it.
func (c *cli) credentialsHost(ts *v1alpha1.TokenServer, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	named := c.opts.sendCredentialsTo
	if named != "" && !strings.EqualFold(named, u.Host) && !strings.EqualFold(named, u.Hostname()) {
		return "", usagef("--send-credentials-to %q is not the host try would send them to, %s", named, u.Host)
	}
	if named != "" || loopback(u.Hostname()) {
		return u.Host, nil
	}
	// Host and port: another port of the issuer's host may be another server.
	issuer, err := url.Parse(ts.Spec.Issuer)
	if err != nil || !strings.EqualFold(hostPort(issuer), hostPort(u)) {
		return "", usagef("--issuer-url %s is not the issuer's host (%s): try would send it the issue-API credential and the client secret; "+
			"if that host is the token server's, say so with --send-credentials-to %s", printable(c.opts.issuerURL), printable(issuerHost(issuer)), u.Hostname())
	}
	return u.Host, nil
}

// hostPort is a URL's host with its port, the scheme's default filled in.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func issuerHost(u *url.URL) string {
	if u == nil {
		return "none"
	}
	return u.Host
}

// discoveryDoc is what check and try read of the OpenID configuration.
type discoveryDoc struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	TokenEndpoint         string `json:"token_endpoint"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
}

// getJSON GETs url and decodes a 200 answer into into.
func (c *cli) getJSON(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return withoutURL(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if redirected(resp) {
		return redirectError(resp)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s: %s", printable(resp.Status), excerpt(body))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("not the JSON expected: %s", printable(err.Error()))
	}
	return nil
}

func redirected(resp *http.Response) bool { return resp.StatusCode >= 300 && resp.StatusCode < 400 }

// redirectError is a 3xx answer, which is not followed (newHTTPClient).
func redirectError(resp *http.Response) error {
	to := "without a Location"
	if loc := resp.Header.Get("Location"); loc != "" {
		to = fmt.Sprintf("to %q", loc)
	}
	return fmt.Errorf("answered %s, a redirect %s: LivePerson would not follow a redirect here, so it is not followed (nothing was sent there)",
		printable(resp.Status), to)
}

func (c *cli) discovery(ctx context.Context, base string) (discoveryDoc, error) {
	var d discoveryDoc
	return d, c.getJSON(ctx, base+endpoints.DiscoveryPath, &d)
}

func (c *cli) jwks(ctx context.Context, base string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	return set, c.getJSON(ctx, base+endpoints.JWKSPath, &set)
}

// withoutURL drops the method and URL net/http puts in front of a transport error: the report
// says them already.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
