package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Login is the compiled spec.login: exactly one field is set.
type Login struct {
	LandingPage    *LandingPage
	Upstream       *Upstream
	TrustedHeaders *TrustedHeaders
	StaticUsers    *StaticUsers
}

// LandingPage is the brand's own login page.
type LandingPage struct {
	URL        *url.URL
	RequestTTL time.Duration
}

// Upstream is the brand's OpenID provider.
type Upstream struct {
	Issuer, ClientID string
	ClientSecret     []byte
	Scopes           []string
	SubjectClaim     string
}

// TrustedHeaders reads an authenticating proxy's headers.
type TrustedHeaders struct {
	UserHeader, EmailHeader string
	Proxies                 []netip.Prefix
}

// StaticUsers are htpasswd users with bcrypt hashes, by name.
type StaticUsers struct {
	Hashes map[string][]byte
}

// MaxStaticUsers bounds an htpasswd Secret: it is a demo and test connector.
const MaxStaticUsers = 1000

func buildLogin(spec *v1alpha1.LoginSpec, set map[string][]byte) (*Login, error) {
	switch {
	case spec.LandingPage != nil:
		u, err := url.Parse(spec.LandingPage.URL)
		if err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("landingPage.url %q is not an absolute URL", spec.LandingPage.URL)
		}
		ttl := spec.LandingPage.RequestTTL.Duration
		if ttl == 0 {
			ttl = v1alpha1.DefaultLandingRequestTTL
		}
		return &Login{LandingPage: &LandingPage{URL: u, RequestTTL: ttl}}, nil
	case spec.UpstreamOIDC != nil:
		up := spec.UpstreamOIDC
		secret, err := loginSecret(set, up.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("upstreamOIDC: %w", err)
		}
		scopes := up.Scopes
		if len(scopes) == 0 {
			scopes = []string{"openid", "profile", "email"}
		}
		subject := up.SubjectClaim
		if subject == "" {
			subject = "sub"
		}
		return &Login{Upstream: &Upstream{Issuer: up.Issuer, ClientID: up.ClientID, ClientSecret: secret, Scopes: scopes, SubjectClaim: subject}}, nil
	case spec.TrustedHeaders != nil:
		th := &TrustedHeaders{UserHeader: spec.TrustedHeaders.UserHeader, EmailHeader: spec.TrustedHeaders.EmailHeader}
		for _, c := range spec.TrustedHeaders.TrustedProxyCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("trustedHeaders.trustedProxyCIDRs: %w", err)
			}
			th.Proxies = append(th.Proxies, p.Masked())
		}
		return &Login{TrustedHeaders: th}, nil
	case spec.StaticUsers != nil:
		data, err := loginSecret(set, spec.StaticUsers.HtpasswdSecretRef)
		if err != nil {
			return nil, fmt.Errorf("staticUsers: %w", err)
		}
		hashes, err := ParseHtpasswd(data)
		if err != nil {
			return nil, fmt.Errorf("staticUsers: %w", err)
		}
		return &Login{StaticUsers: &StaticUsers{Hashes: hashes}}, nil
	}
	return nil, errors.New("login sets none of landingPage, upstreamOIDC, trustedHeaders, staticUsers")
}

// loginSecret is the value of ref, as the operator copied it into the secret set.
func loginSecret(set map[string][]byte, ref v1alpha1.SecretKeyRef) ([]byte, error) {
	v := secretset.Login(set)
	if len(v) == 0 {
		return nil, fmt.Errorf("Secret %s has no key %q (or is missing)", ref.Name, ref.Key)
	}
	return v, nil
}

// ParseHtpasswd reads "user:hash" lines; only bcrypt hashes ($2a$, $2b$, $2y$: htpasswd -B) are
// accepted, because the others (MD5-crypt, SHA-1, plain) are too weak to guard a login.
func ParseHtpasswd(data []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd line %d is not user:hash", n)
		}
		switch {
		case strings.HasPrefix(hash, "$2y$"):
			// The same algorithm as $2a$ under PHP's name; Go's bcrypt reads it as $2a$.
			hash = "$2a$" + hash[4:]
		case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		default:
			return nil, fmt.Errorf("htpasswd line %d (user %q) is not a bcrypt hash: create it with htpasswd -B", n, user)
		}
		if _, dup := out[user]; dup {
			return nil, fmt.Errorf("htpasswd user %q appears twice", user)
		}
		out[user] = []byte(hash)
		if len(out) > MaxStaticUsers {
			return nil, fmt.Errorf("htpasswd has more than %d users", MaxStaticUsers)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("htpasswd has no users")
	}
	return out, nil
}
