// Package endpoints builds the token server's URLs from its issuer. The operator (status,
// LivePerson console values) and the token server (its routes) use the same paths from here.
package endpoints

import "strings"

// Paths under the issuer.
const (
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
	IssueAPIPath  = "/api/v1"
)

// URLs are the absolute endpoint URLs of one issuer.
type URLs struct {
	Authorization, Token, JWKS, Discovery, IssueAPI string
}

// For returns the endpoint URLs of issuer (which never ends with '/': the API refuses that).
func For(issuer string) URLs {
	base := strings.TrimSuffix(issuer, "/")
	return URLs{
		Authorization: base + AuthorizePath,
		Token:         base + TokenPath,
		JWKS:          base + JWKSPath,
		Discovery:     base + DiscoveryPath,
		IssueAPI:      base + IssueAPIPath,
	}
}
