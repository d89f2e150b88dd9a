package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReplayStoreType is where the token server records redeemed codes.
// +kubebuilder:validation:Enum=Memory;Redis
type ReplayStoreType string

const (
	// ReplayStoreMemory keeps redeemed codes in the process: correct only with one replica.
	ReplayStoreMemory ReplayStoreType = "Memory"
	// ReplayStoreRedis keeps redeemed codes in Redis (SET NX with a TTL), shared by all replicas.
	ReplayStoreRedis ReplayStoreType = "Redis"
)

// TokenServerSpec is one issuer and the Deployment that serves it.
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || (has(self.replayStore) && self.replayStore.type == 'Redis')",message="replicas greater than 1 need replayStore.type Redis: a replica's memory store cannot see codes another replica redeemed, so a code could be used twice"
// +kubebuilder:validation:XValidation:rule="!(has(self.ingress) && has(self.route))",message="set at most one of ingress and route: both would expose the issuer twice"
type TokenServerSpec struct {
	// issuer is the https URL LivePerson sees: the exact iss claim of every token and the base of
	// every endpoint (issuer + "/token", ...). It cannot change: LivePerson's console pins it.
	// http is accepted only for localhost, 127.0.0.1 and ::1 (local development).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != ''",message="issuer must be an absolute URL such as https://auth.example.com"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1'])",message="issuer must use https (http is accepted only for localhost, 127.0.0.1 and ::1)"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="issuer must not have a query or a fragment"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith('/')",message="issuer must not end with '/': it is the exact iss claim and endpoint paths are appended to it"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#]+(/[A-Za-z0-9._~-]+)*$')",message="issuer path segments may contain only letters, digits and . _ ~ - (no percent-encoding, braces, dollar signs, spaces or empty segments): the path prefixes every endpoint and is routed literally"
	// +kubebuilder:validation:XValidation:rule="!self.matches('/[.][.]?(/|$)')",message="issuer path must not contain '.' or '..' segments"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="issuer is immutable: LivePerson's console and every issued token carry it; create a new TokenServer for a new issuer"
	Issuer string `json:"issuer"`

	// signingKeyRef names the SigningKey whose Active key signs this issuer's tokens.
	// +required
	SigningKeyRef LocalObjectReference `json:"signingKeyRef"`

	// replicas is the number of token-server pods. More than one needs the Redis replay store. Defaults to 1.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// image runs the token server. Empty means the operator's own image, so the operator and the
	// token server never drift apart. Another image runs only when the operator was started with
	// a prefix that allows it (--allowed-token-server-images): the token server's ServiceAccount
	// reads the signing keys, so whoever can create a TokenServer must not choose what runs.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// resources of the token-server container. Empty means modest requests suited to LivePerson
	// traffic (the operator's defaults).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// ingress, when set, exposes the issuer through an Ingress whose host and path come from the
	// issuer URL.
	// +optional
	Ingress *IngressSpec `json:"ingress,omitempty"`

	// route, when set, exposes the issuer through a Gateway API HTTPRoute
	// (gateway.networking.k8s.io/v1) attached to the Gateways it names, with the issuer URL's
	// host and path: the alternative to ingress on clusters that route with Gateway API. The
	// cluster needs the Gateway API CRDs; without them the TokenServer is not Ready and says so.
	// +optional
	Route *RouteSpec `json:"route,omitempty"`

	// monitoring says how Prometheus finds the token server's metrics (port "metrics" of its
	// Service; the README's "Monitoring" lists them and the alerts that read them).
	// +optional
	Monitoring *MonitoringSpec `json:"monitoring,omitempty"`

	// login is how a person is authenticated on the pop-out window's authorization page: set
	// exactly one of landingPage, upstreamOIDC, trustedHeaders or staticUsers. Without it, only
	// the SDK flows (issue API) work and /authorize shows an error page.
	// +optional
	Login *LoginSpec `json:"login,omitempty"`

	// replayStore records redeemed codes so each redeems once. Memory when unset.
	// +optional
	ReplayStore *ReplayStoreSpec `json:"replayStore,omitempty"`

	// trustedProxyCIDRs are the addresses of the proxies in front of the token server (the
	// ingress controller, a load balancer). Only a request whose peer is in one of them has its
	// client address taken from X-Forwarded-For (the rightmost address not itself trusted); any
	// other request is limited by its peer address. Without it the peer address is always used,
	// so behind an ingress every failed attempt counts against the ingress's address: set it, or
	// the per-address limits of /token and the login form apply to all callers at once.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="trustedProxyCIDRs must be CIDRs such as 10.0.0.0/8 or fd00::/8"
	// +listType=set
	// +optional
	TrustedProxyCIDRs []string `json:"trustedProxyCIDRs,omitempty"`

	// issueAPICredentialOverlap is how long the previous issue-API credential stays accepted
	// after auth.lpauth.dev/rotate-credentials (Go duration, 1m to 720h): the time the brand's
	// backends have to switch to the new one. Defaults to 24h.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="issueAPICredentialOverlap must be a Go duration such as 24h (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('1m') && duration(self) <= duration('720h')",message="issueAPICredentialOverlap must be between 1m and 720h"
	// +optional
	IssueAPICredentialOverlap metav1.Duration `json:"issueAPICredentialOverlap,omitzero"`

	// codeTTL is how long an authorization code can be redeemed (Go duration, 10s to 10m). Defaults to 120s.
	// +kubebuilder:default="120s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="codeTTL must be a Go duration such as 120s (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('10s') && duration(self) <= duration('10m')",message="codeTTL must be between 10s and 10m"
	// +optional
	CodeTTL metav1.Duration `json:"codeTTL,omitzero"`
}

// IngressSpec configures the Ingress in front of the token server.
type IngressSpec struct {
	// className is the IngressClass to use; the cluster's default class when unset.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClassName *string `json:"className,omitempty"`

	// tlsSecretName is the Secret with the certificate for the issuer's host.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// annotations are copied onto the Ingress (cert-manager issuer, rate limits, ...).
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RouteSpec configures the HTTPRoute in front of the token server.
type RouteSpec struct {
	// parentRefs are the Gateways (or their listeners) the route attaches to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	ParentRefs []GatewayRef `json:"parentRefs"`

	// annotations are copied onto the HTTPRoute.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MonitoringSpec is how the token server's metrics are scraped.
type MonitoringSpec struct {
	// serviceMonitor, when enabled, has the operator create a Prometheus Operator ServiceMonitor
	// (monitoring.coreos.com/v1) for the metrics port. The cluster needs the ServiceMonitor CRD;
	// without it the TokenServer stays Ready and its ServiceMonitorReady condition says so.
	// +optional
	ServiceMonitor *ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
}

// ServiceMonitorSpec is the ServiceMonitor the operator creates for a token server.
type ServiceMonitorSpec struct {
	// enabled creates the ServiceMonitor (and false deletes it).
	// +required
	Enabled bool `json:"enabled"`

	// labels are added to the ServiceMonitor, for a Prometheus whose serviceMonitorSelector
	// picks ServiceMonitors by label (e.g. release: kube-prometheus-stack).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// interval between scrapes, e.g. 30s; Prometheus's own when unset.
	// +kubebuilder:validation:Pattern=`^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Interval string `json:"interval,omitempty"`
}

// GatewayRef names a Gateway, and optionally one of its listeners.
type GatewayRef struct {
	// name of the Gateway.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the Gateway; the TokenServer's own when unset. (A Gateway in another
	// namespace must allow routes from this one.)
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// sectionName is the Gateway listener to attach to; all of its listeners that accept the
	// route when unset.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SectionName string `json:"sectionName,omitempty"`
}

// LoginSpec chooses exactly one way to authenticate a person on the authorization page.
// +kubebuilder:validation:XValidation:rule="[has(self.landingPage), has(self.upstreamOIDC), has(self.trustedHeaders), has(self.staticUsers)].filter(x, x).size() == 1",message="login must set exactly one of landingPage, upstreamOIDC, trustedHeaders or staticUsers"
type LoginSpec struct {
	// landingPage sends the person to the brand's own login page, which completes the request
	// through the issue API.
	// +optional
	LandingPage *LandingPageLogin `json:"landingPage,omitempty"`

	// upstreamOIDC federates to the brand's existing identity provider (Auth0, Okta, Keycloak,
	// Azure AD, ...): the token server is its relying party.
	// +optional
	UpstreamOIDC *UpstreamOIDCLogin `json:"upstreamOIDC,omitempty"`

	// trustedHeaders takes the identity from headers set by an authenticating proxy, accepted
	// only from the proxy's addresses.
	// +optional
	TrustedHeaders *TrustedHeadersLogin `json:"trustedHeaders,omitempty"`

	// staticUsers shows a login form checked against an htpasswd (bcrypt) Secret: for demos and
	// tests.
	// +optional
	StaticUsers *StaticUsersLogin `json:"staticUsers,omitempty"`

	// brandingConfigMapRef names a ConfigMap in the same namespace that brands the login and
	// error pages. Its keys, all optional: "title" (shown on the page, up to 100 characters),
	// "logoURL" (an https image URL), "primaryColor" and "backgroundColor" (#rgb or #rrggbb),
	// "lang" and "dir" (ltr or rtl), and "text.<name>" for every text a customer sees (sign-in
	// title, prompt, labels, button, and each error's heading and sentence; the README lists
	// them). A value that does not fit keeps the default, with a log line. A missing ConfigMap
	// is cosmetic: the TokenServer's BrandingApplied condition says so; Ready does not change.
	// +optional
	BrandingConfigMapRef *LocalObjectReference `json:"brandingConfigMapRef,omitempty"`
}

// LandingPageLogin hands the person to the brand's own login page.
type LandingPageLogin struct {
	// url of the brand's login page; /authorize redirects there with a signed, short-lived login
	// request. https, or http for localhost only.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="url must be an absolute https URL (http is accepted only for localhost)"
	URL string `json:"url"`

	// requestTTL is how long the login request stays valid (Go duration, 1m to 1h). Defaults to 10m.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="requestTTL must be a Go duration such as 10m (units h, m, s; there is no d unit)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('1m') && duration(self) <= duration('1h')",message="requestTTL must be between 1m and 1h"
	// +optional
	RequestTTL metav1.Duration `json:"requestTTL,omitzero"`
}

// UpstreamOIDCLogin is the brand's OpenID provider.
type UpstreamOIDCLogin struct {
	// issuer of the upstream provider; its discovery document is read from
	// issuer + "/.well-known/openid-configuration".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="issuer must be an absolute https URL (http is accepted only for localhost)"
	Issuer string `json:"issuer"`

	// clientID the token server uses at the upstream provider.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ClientID string `json:"clientID"`

	// clientSecretRef is the Secret key holding the upstream client secret.
	// +required
	ClientSecretRef SecretKeyRef `json:"clientSecretRef"`

	// scopes requested upstream; must include openid. Defaults to openid, profile, email.
	// +kubebuilder:default={openid,profile,email}
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="'openid' in self",message="scopes must include openid"
	// +listType=set
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// subjectClaim is the upstream claim that becomes the person's sub (LivePerson's customer
	// id). It must be unique, stable and not guessable: never an email or a phone number. Defaults to sub.
	// +kubebuilder:default=sub
	// +kubebuilder:validation:MaxLength=128
	// +optional
	SubjectClaim string `json:"subjectClaim,omitempty"`
}

// TrustedHeadersLogin reads the identity an authenticating proxy put in request headers.
type TrustedHeadersLogin struct {
	// userHeader carries the person's stable id (becomes sub), e.g. X-Forwarded-User.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	UserHeader string `json:"userHeader"`

	// emailHeader carries the person's email, e.g. X-Forwarded-Email.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	// +optional
	EmailHeader string `json:"emailHeader,omitempty"`

	// trustedProxyCIDRs are the only client addresses whose headers are believed; any other
	// caller gets 403.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="trustedProxyCIDRs must be CIDRs such as 10.0.0.0/8 or fd00::/8"
	// +listType=set
	TrustedProxyCIDRs []string `json:"trustedProxyCIDRs"`
}

// StaticUsersLogin checks a login form against an htpasswd file.
type StaticUsersLogin struct {
	// htpasswdSecretRef is the Secret key holding htpasswd lines with bcrypt hashes
	// (htpasswd -B).
	// +required
	HtpasswdSecretRef SecretKeyRef `json:"htpasswdSecretRef"`
}

// ReplayStoreSpec is where redeemed codes are recorded.
// +kubebuilder:validation:XValidation:rule="self.type == 'Redis' ? has(self.redis) : !has(self.redis)",message="replayStore.redis must be set when, and only when, type is Redis"
type ReplayStoreSpec struct {
	// type is Memory (one replica) or Redis (any number of replicas). Defaults to Memory.
	// +kubebuilder:default=Memory
	// +optional
	Type ReplayStoreType `json:"type,omitempty"`

	// redis is the Redis server shared by the replicas.
	// +optional
	Redis *RedisReplayStore `json:"redis,omitempty"`
}

// RedisReplayStore locates the Redis server.
type RedisReplayStore struct {
	// addressSecretRef is the Secret key holding the Redis URL (it may carry a password, hence a
	// Secret): redis://host:port/db (rediss:// for TLS); for Sentinel the sentinels' addresses
	// with ?master_name=NAME (more sentinels with &addr=host:port); for Redis Cluster
	// redis+cluster://host:port (more nodes with ?addr=host:port).
	// +required
	AddressSecretRef SecretKeyRef `json:"addressSecretRef"`
}

// TokenServerEndpoints are the URLs the token server serves, built from the issuer.
type TokenServerEndpoints struct {
	// authorization is the pop-out window's authorization endpoint (LivePerson's
	// "Authentication Endpoint").
	// +optional
	Authorization string `json:"authorization,omitempty"`
	// token is where LivePerson redeems codes (LivePerson's "Token Endpoint").
	// +optional
	Token string `json:"token,omitempty"`
	// jwks is the public key set (LivePerson's "JWKS Endpoint").
	// +optional
	JWKS string `json:"jwks,omitempty"`
	// discovery is the OpenID configuration document.
	// +optional
	Discovery string `json:"discovery,omitempty"`
	// issueAPI is the base URL of the brand backend's API that mints codes and tokens.
	// +optional
	IssueAPI string `json:"issueAPI,omitempty"`
}

// TokenServerStatus is the observed state of the token server.
type TokenServerStatus struct {
	// conditions: Ready and Available.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// endpoints are the URLs to give LivePerson and the brand's backend.
	// +optional
	Endpoints *TokenServerEndpoints `json:"endpoints,omitempty"`

	// readyReplicas is the number of token-server pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// credentialsSecretName is the Secret holding the code-sealing key and the issue-API bearer
	// credential (key "issueAPIToken").
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CredentialsSecretName string `json:"credentialsSecretName,omitempty"`
}

// TokenServer is one OpenID issuer served by a Deployment: LivePerson redeems codes at its token
// endpoint and verifies id_tokens with its JWKS; the brand's backend mints codes and JWTs through
// its issue API.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ts,categories=lpauth
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuer`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired issuer and its Deployment.
	// +required
	Spec TokenServerSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status TokenServerStatus `json:"status,omitempty"`
}

// TokenServerList is a list of TokenServers.
//
// +kubebuilder:object:root=true
type TokenServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TokenServer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TokenServer{}, &TokenServerList{})
}
