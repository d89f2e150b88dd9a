package lpauthctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/endpoints"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// maxBody bounds what is read from the token server: its documents are a few KB.
const maxBody = 1 << 20

// base is where the token server is reached: --issuer-url, else the issuer itself.
func (c *cli) base(ts *v1alpha1.TokenServer) (string, error) {
	b := ts.Spec.Issuer
	if c.opts.issuerURL != "" {
		u, err := url.Parse(c.opts.issuerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", usagef("--issuer-url %q is not an http(s) URL", c.opts.issuerURL)
		}
		b = c.opts.issuerURL
	}
	return strings.TrimSuffix(b, "/"), nil
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s: %.200s", resp.Status, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("not the JSON expected: %w", err)
	}
	return nil
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
