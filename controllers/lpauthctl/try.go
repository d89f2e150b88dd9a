package lpauthctl

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/credentials"
	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/redirect"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

func tryFlags(fs *flag.FlagSet, o *options) {
	issuerFlags(fs, o)
	fs.StringVar(&o.subject, "sub", "kubectl-lpauth-try", "the customer id (sub) of the test login")
	fs.StringVar(&o.redirectURI, "redirect-uri", "", "the redirect_uri LivePerson sends (default: the client's first redirect URI)")
	fs.StringVar(&o.sendCredentialsTo, "send-credentials-to", "", "with an --issuer-url neither on the issuer's host nor on loopback: that URL's host, to say it may have the issue-API credential and the client secret")
	fs.StringVar(&o.clientAuth, "client-auth", "basic", "how LivePerson authenticates at /token: basic (Authorization: Basic, LivePerson's current docs) or post (client_id and client_secret in the form, its oldest docs)")
}

// trial is one run of try: what it needs to play the brand's backend and LivePerson.
type trial struct {
	c            *cli
	base         string
	lpac         *v1alpha1.LivePersonAuthClient
	ts           *v1alpha1.TokenServer
	clientID     string
	issueToken   string // the issue-API credential: sent, never printed
	clientSecret string // sent, never printed
	step         int
}

// runTry plays the code flow (or the implicit flow) end to end against the running token
// server, printing each step; the first failed step ends it with a non-zero exit.
func runTry(ctx context.Context, c *cli, args []string) error {
	if c.opts.clientAuth != "basic" && c.opts.clientAuth != "post" {
		return usagef("--client-auth must be basic or post, got %q", c.opts.clientAuth)
	}
	t := &trial{c: c, lpac: &v1alpha1.LivePersonAuthClient{}, ts: &v1alpha1.TokenServer{}}
	if err := c.get(ctx, args[0], t.lpac); err != nil {
		return err
	}
	if err := c.get(ctx, t.lpac.Spec.TokenServerRef.Name, t.ts); err != nil {
		return err
	}
	if t.clientID = t.lpac.Status.ClientID; t.clientID == "" {
		return fmt.Errorf("LivePersonAuthClient %s has no client id yet: Ready is %s", t.lpac.Name, condition(t.lpac.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue))
	}
	var err error
	if t.base, err = c.base(t.ts); err != nil {
		return err
	}
	host, err := c.credentialsHost(t.ts, t.base)
	if err != nil {
		return err
	}
	if t.issueToken, err = c.secretValue(ctx, credentials.SecretName(t.ts.Name), credentials.IssueAPITokenKey); err != nil {
		return fmt.Errorf("reading the issue-API credential: %w", err)
	}
	flow := t.lpac.Spec.Flow
	if flow == "" {
		flow = v1alpha1.FlowCode
	}
	fmt.Fprintf(c.stdout, "Trying LivePersonAuthClient %s/%s (%s flow, client id %s) at %s\n", t.lpac.Namespace, t.lpac.Name, flow, t.clientID, t.base)
	sent := "the issue-API credential"
	if flow != v1alpha1.FlowImplicit {
		sent += " and the client secret"
	}
	fmt.Fprintf(c.stdout, "Sending %s to %s only (redirects are not followed)\n", sent, host)
	if flow == v1alpha1.FlowImplicit {
		err = t.implicitFlow(ctx)
	} else {
		err = t.codeFlow(ctx)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "OK: LivePerson can log this client's customers in.")
	return nil
}

func (t *trial) codeFlow(ctx context.Context) error {
	ref := t.lpac.Status.ClientSecretRef
	if ref == nil {
		return fmt.Errorf("LivePersonAuthClient %s names no client secret yet: Ready is %s", t.lpac.Name, condition(t.lpac.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue))
	}
	var err error
	if t.clientSecret, err = t.c.secretValue(ctx, ref.Name, ref.Key); err != nil {
		return fmt.Errorf("reading the client secret: %w", err)
	}
	redirectURI := t.c.opts.redirectURI
	if redirectURI == "" {
		redirectURI = firstRedirect(t.lpac.Spec.RedirectURIs)
	}
	// LivePerson sends a verifier when PKCE is on in its console, which the operator asks for
	// only when the client requires it.
	var verifier, challenge string
	if t.lpac.Spec.PKCE == v1alpha1.PKCERequired {
		verifier, challenge = pkcePair()
	}

	// 1. The brand's backend: a code for a customer it has logged in.
	req := map[string]any{"client_id": t.clientID, "sub": t.c.opts.subject, "redirect_uri": redirectURI}
	if challenge != "" {
		req["code_challenge"], req["code_challenge_method"] = challenge, "S256"
	}
	var issued struct {
		Code      string `json:"code"`
		ExpiresIn int64  `json:"expires_in"`
	}
	what := fmt.Sprintf("POST %s/codes for sub %q, redirect_uri %s", endpoints.IssueAPIPath, t.c.opts.subject, redirectURI)
	if challenge != "" {
		what += ", PKCE S256"
	}
	if err := t.issue(ctx, "/codes", req, &issued); err != nil || issued.Code == "" {
		return t.fail("issue API", what, errOr(err, "no code in the answer"))
	}
	t.pass("issue API", "%s: a code, expires in %ds", what, issued.ExpiresIn)

	// 2. LivePerson: the code redeemed at the token endpoint, authenticated as configured.
	what = fmt.Sprintf("POST %s, client_secret_%s as %s", endpoints.TokenPath, t.c.opts.clientAuth, t.clientID)
	tok, status, err := t.redeem(ctx, issued.Code, redirectURI, verifier)
	if err != nil {
		return t.fail("token endpoint", what, err)
	}
	t.pass("token endpoint", "%s: %d, token_type %s, expires_in %d, an id_token", what, status, tok.TokenType, tok.ExpiresIn)

	if err := t.verify(ctx, tok.IDToken); err != nil {
		return err
	}

	// 3. A code is single use: LivePerson presenting it again must be refused.
	what = "the same code again"
	if _, status, err := t.redeem(ctx, issued.Code, redirectURI, verifier); err == nil {
		return t.fail("replay", what, fmt.Errorf("answered %d with tokens: codes must redeem once", status))
	} else if !strings.Contains(err.Error(), "invalid_grant") {
		return t.fail("replay", what, fmt.Errorf("refused, but not with invalid_grant: %w", err))
	}
	t.pass("replay", "%s: refused with invalid_grant, as it must be", what)
	return nil
}

func (t *trial) implicitFlow(ctx context.Context) error {
	what := fmt.Sprintf("POST %s/tokens for sub %q", endpoints.IssueAPIPath, t.c.opts.subject)
	var issued struct {
		Token     string `json:"token"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := t.issue(ctx, "/tokens", map[string]any{"client_id": t.clientID, "sub": t.c.opts.subject}, &issued); err != nil || issued.Token == "" {
		return t.fail("issue API", what, errOr(err, "no token in the answer"))
	}
	t.pass("issue API", "%s: a JWT for LivePerson's SDK, expires in %ds", what, issued.ExpiresIn)
	return t.verify(ctx, issued.Token)
}

// verify fetches the JWKS as LivePerson does and checks the token against it.
func (t *trial) verify(ctx context.Context, token string) error {
	set, err := t.c.jwks(ctx, t.base)
	if err != nil {
		return t.fail("JWKS", "GET "+endpoints.JWKSPath, err)
	}
	t.pass("JWKS", "GET %s: %d key(s)", endpoints.JWKSPath, len(set.Keys))
	aud := t.lpac.Spec.IDToken.Audience
	if aud == "" {
		aud = t.clientID
	}
	want := expectedToken{issuer: t.ts.Spec.Issuer, subject: t.c.opts.subject, audience: aud, encrypted: t.lpac.Spec.Encryption != nil}
	summary, err := verifyToken(token, set, want, t.c.now())
	if err != nil {
		return t.fail("id_token", "checked as LivePerson checks it", err)
	}
	t.pass("id_token", "%s", summary)
	return nil
}

// issue calls the issue API as the brand's backend does, with the bearer credential.
func (t *trial) issue(ctx context.Context, path string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+endpoints.IssueAPIPath+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.issueToken)
	_, err = t.do(req, into)
	return err
}

// tokenAnswer is /token's success.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
}

// redeem presents a code at /token as LivePerson's backend does.
func (t *trial) redeem(ctx context.Context, code, redirectURI, verifier string) (tokenAnswer, int, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	if t.c.opts.clientAuth == "post" {
		form.Set("client_id", t.clientID)
		form.Set("client_secret", t.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+endpoints.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenAnswer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if t.c.opts.clientAuth == "basic" {
		// LivePerson sends the id and secret as they are (not form-encoded): so does this.
		req.SetBasicAuth(t.clientID, t.clientSecret)
	}
	var tok tokenAnswer
	resp, err := t.do(req, &tok)
	if err != nil {
		return tok, 0, err
	}
	switch {
	case resp.Header.Get("Cache-Control") != "no-store":
		return tok, resp.StatusCode, fmt.Errorf("the Cache-Control header is %q, LivePerson's contract says no-store", resp.Header.Get("Cache-Control"))
	case tok.IDToken == "":
		return tok, resp.StatusCode, errors.New("no id_token in the answer")
	case !strings.EqualFold(tok.TokenType, "Bearer"):
		return tok, resp.StatusCode, fmt.Errorf("token_type %q, want Bearer", tok.TokenType)
	}
	return tok, resp.StatusCode, nil
}

// do sends req and decodes a 200 JSON answer; any other answer is an error that says what the
// server said (its OAuth error, never a secret: the server puts none in its errors).
func (t *trial) do(req *http.Request, into any) (*http.Response, error) {
	resp, err := t.c.http.Do(req)
	if err != nil {
		return nil, withoutURL(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp, err
	}
	if redirected(resp) {
		return resp, redirectError(resp)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return resp, fmt.Errorf("answered %d %s: %s", resp.StatusCode, printable(e.Error), printable(e.Description))
		}
		return resp, fmt.Errorf("answered %s: %s", printable(resp.Status), excerpt(body))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return resp, fmt.Errorf("not the JSON expected: %s", printable(err.Error()))
	}
	return resp, nil
}

// pass and fail print what the server said through printable, whatever the step put in it.
func (t *trial) pass(name, format string, a ...any) {
	t.step++
	fmt.Fprintf(t.c.stdout, "  %d. %-15s %s\n", t.step, name, printable(fmt.Sprintf(format, a...)))
}

// fail prints the failed step in its place and returns the error that ends the run.
func (t *trial) fail(name, what string, err error) error {
	t.step++
	msg := printable(err.Error())
	fmt.Fprintf(t.c.stdout, "  %d. %-15s %s: FAILED: %s\n", t.step, name, printable(what), msg)
	return fmt.Errorf("step %d (%s) failed: %s", t.step, name, msg)
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// firstRedirect is the redirect_uri to present: the client's first exact entry, else the
// directory of its first prefix entry (which the prefix allows), else LivePerson's default.
func firstRedirect(entries []string) string {
	if len(entries) == 0 {
		entries = redirect.Defaults
	}
	for _, e := range entries {
		if !strings.HasPrefix(e, redirect.PrefixMarker) {
			return e
		}
	}
	return strings.TrimPrefix(entries[0], redirect.PrefixMarker)
}

// pkcePair is a fresh PKCE verifier and its S256 challenge (RFC 7636).
func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}
