package v1alpha1

// Condition types. Every kind reports Ready; the others belong to one kind each.
const (
	// ConditionReady is True when the object does everything it was asked to.
	ConditionReady = "Ready"

	// ConditionRotating is True on a SigningKey while a rotation is under way: a new key is
	// published but not yet signing, or an old key is retired but still published.
	ConditionRotating = "Rotating"

	// ConditionDegraded is True on a SigningKey when its Secret was missing, hand-edited or
	// partly unreadable and the operator recovered what it could.
	ConditionDegraded = "Degraded"

	// ConditionAvailable is True on a TokenServer when at least one token-server pod serves.
	ConditionAvailable = "Available"

	// ConditionBrandingApplied is True on a TokenServer whose branding ConfigMap is applied;
	// False (cosmetic, Ready does not depend on it) when it is missing.
	ConditionBrandingApplied = "BrandingApplied"

	// ConditionServiceMonitorReady is True on a TokenServer whose spec.monitoring asks for a
	// ServiceMonitor once it is applied; False (Ready does not depend on it) when the cluster
	// does not serve the ServiceMonitor CRD; absent when none is asked for.
	ConditionServiceMonitorReady = "ServiceMonitorReady"

	// ConditionTimingValid is False on a SigningKey whose publishAhead is shorter than relying
	// parties cache the JWKS, and on a client whose tokens outlive how long a retired key stays
	// published: tokens would fail verification before they expire. A warning: Ready does not
	// depend on it.
	ConditionTimingValid = "TimingValid"

	// ConditionDeletionBlocked is True on a SigningKey or TokenServer being deleted while others
	// still use it: the in-use finalizer holds it until they are gone or the delete-anyway
	// annotation is set.
	ConditionDeletionBlocked = "DeletionBlocked"

	// ConditionIssuerUnique is False on each TokenServer that shares its issuer with another.
	ConditionIssuerUnique = "IssuerUnique"

	// ConditionConsoleUpdateRequired is True on a LivePersonAuthClient in PEM mode when a new
	// public key must be pasted into LivePerson's console before rotation can go on.
	ConditionConsoleUpdateRequired = "ConsoleUpdateRequired"
)

// Condition reasons, shared by the kinds. A reason is one CamelCase word a script can match; the
// condition's message says the rest in words.
const (
	// ReasonReconciled: everything the spec asks for exists and is current.
	ReasonReconciled = "Reconciled"
	// ReasonInvalidSpec: the spec asks for something the operator cannot do; the message says what.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonImageNotAllowed: spec.image is neither the operator's own image nor under a prefix
	// the operator was started with (--allowed-token-server-images).
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonReconcileError: a transient error (API server, conflict); the operator retries.
	ReasonReconcileError = "ReconcileError"

	// ReasonKeysPublished: a Next key is published and waits for its activation time.
	ReasonKeysPublished = "NextKeyPublished"
	// ReasonRotationEarly: a rotation was forced before the Next key had been published for
	// publishAhead, so relying parties that cached the old JWKS may briefly fail verification.
	ReasonRotationEarly = "RotatedBeforePublishAhead"
	// ReasonKeyRevoked: a key was removed at once by the revoke annotation.
	ReasonKeyRevoked = "KeyRevoked"
	// ReasonSecretRecovered: the key Secret was missing or damaged and was rebuilt from what
	// could be read.
	ReasonSecretRecovered = "SecretRecovered"
	// ReasonRotationHeld: scheduled rotation waits for a PEM-mode client's console update.
	ReasonRotationHeld = "RotationHeldForConsole"
	// ReasonRotationPaused: spec.rotation.paused is set.
	ReasonRotationPaused = "RotationPaused"
	// ReasonIdle: no rotation is under way.
	ReasonIdle = "Idle"

	// ReasonTokenServerNotFound: the referenced TokenServer does not exist (yet).
	ReasonTokenServerNotFound = "TokenServerNotFound"
	// ReasonSigningKeyNotFound: the referenced SigningKey does not exist or has no active key.
	ReasonSigningKeyNotFound = "SigningKeyNotFound"
	// ReasonSecretNotFound: a referenced Secret or a key in it is missing.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonClientIDConflict: an older client of the same TokenServer has this client id; this
	// one is not served.
	ReasonClientIDConflict = "ClientIDConflict"
	// ReasonGeneratedClientIDRestored: the generated-client-id annotation was edited and the
	// operator put back the id it generated (recorded in the client's Secret and status).
	ReasonGeneratedClientIDRestored = "GeneratedClientIDRestored"
	// ReasonSecretSetFull: a TokenServer's secret set would exceed a Secret's size; its youngest
	// clients are left out (an event on the TokenServer; they say NotServed).
	ReasonSecretSetFull = "SecretSetFull"
	// ReasonSecretSetNotWritten: the operator could not write a TokenServer's secret set (an
	// event on the TokenServer): its clients are not served as they are now.
	ReasonSecretSetNotWritten = "SecretSetNotWritten"
	// ReasonWaitingForTokenServer: a change of the client's secret or keys has not reached the
	// token server yet (seconds).
	ReasonWaitingForTokenServer = "WaitingForTokenServer"
	// ReasonNotServed: the token server's secret set has not carried the client's current secret
	// or encryption keys for a while: LivePerson's requests for it fail.
	ReasonNotServed = "NotServed"
	// ReasonInvalidSecret: a referenced Secret holds data that cannot be used.
	ReasonInvalidSecret = "InvalidSecret"
	// ReasonClientSecretRegenerated: the generated client secret's Secret was deleted and a new
	// secret generated; LivePerson's console needs the new one.
	ReasonClientSecretRegenerated = "ClientSecretRegenerated"
	// ReasonConsoleUpToDate: LivePerson's console holds the key the server signs with.
	ReasonConsoleUpToDate = "ConsoleUpToDate"
	// ReasonConsoleKeyOutdated: the key that signs is not the one LivePerson's console holds (a
	// forced rotation, a revoke): LivePerson rejects every token until it is pasted.
	ReasonConsoleKeyOutdated = "ConsoleKeyOutdated"
	// ReasonConsoleKeyAhead: LivePerson's console holds the Next key, which signs once every
	// PEM-mode client of the SigningKey has acknowledged it; meanwhile its tokens are rejected.
	ReasonConsoleKeyAhead = "ConsoleKeyAhead"
	// ReasonNewKeyPending: a new key waits to be pasted into LivePerson's console.
	ReasonNewKeyPending = "NewKeyPending"

	// ReasonPublishAheadTooShort: a new key would sign before relying parties refetch the JWKS.
	ReasonPublishAheadTooShort = "PublishAheadShorterThanJWKSCache"
	// ReasonRetainTooShort: a retired key leaves the JWKS before the tokens it signed expire.
	ReasonRetainTooShort = "RetainShorterThanTokens"
	// ReasonInUse: a deletion waits for the objects that still use this one.
	ReasonInUse = "InUse"
	// ReasonKeysFound: a key Secret labelled for the SigningKey exists (a restore); the
	// adopt-keys annotation takes it over.
	ReasonKeysFound = "KeysFound"
	// ReasonSecretAdopted (event): a restored Secret was taken over, as adopt-secret asked.
	ReasonSecretAdopted = "SecretAdopted"
	// ReasonCredentialsCut (event): a cut- credential rotation kept no previous value.
	ReasonCredentialsCut = "CredentialsCut"
	// ReasonGatewayAPIMissing: spec.route is set and the cluster does not serve HTTPRoute.
	ReasonGatewayAPIMissing = "GatewayAPIMissing"

	// ReasonServiceMonitorCRDMissing: spec.monitoring.serviceMonitor is enabled and the cluster
	// does not serve ServiceMonitor (monitoring.coreos.com/v1, the Prometheus Operator's CRDs).
	ReasonServiceMonitorCRDMissing = "ServiceMonitorCRDMissing"
	// ReasonNameConflict: an object the TokenServer needs has a name taken by one it does not own.
	ReasonNameConflict = "NameConflict"
	// ReasonSecretFound: a Secret the operator wrote for an earlier TokenServer or client of this
	// name exists (a restore); the adopt-secret annotation takes it over.
	ReasonSecretFound = "SecretFound"
	// ReasonConfigMapNotFound: a referenced ConfigMap does not exist.
	ReasonConfigMapNotFound = "ConfigMapNotFound"
	// ReasonInvalidBranding: the branding ConfigMap has values the pages refuse (each keeps its
	// default) or keys they do not use.
	ReasonInvalidBranding = "InvalidBranding"
	// ReasonIssuerConflict: another TokenServer has the same issuer.
	ReasonIssuerConflict = "IssuerConflict"
	// ReasonTokenServerNotReady: the client's TokenServer is not Ready, so LivePerson cannot use
	// the client yet.
	ReasonTokenServerNotReady = "TokenServerNotReady"
	// ReasonDeploymentProgressing: the token-server Deployment is rolling out.
	ReasonDeploymentProgressing = "DeploymentProgressing"
	// ReasonDeploymentAvailable: the token-server Deployment has available replicas.
	ReasonDeploymentAvailable = "DeploymentAvailable"
	// ReasonDeploymentUnavailable: no token-server replica is available.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
)

// Event reasons: what the operator's events say happened, one CamelCase word a script or an alert
// can match. (Events for a not-ready outcome use the condition's reason above.)
const (
	// SigningKey: the key lifecycle.
	ReasonKeyCreated                     = "KeyCreated"
	ReasonKeyRotated                     = "KeyRotated"
	ReasonKeyRemoved                     = "KeyRemoved"
	ReasonNextKeyReplaced                = "NextKeyReplaced"
	ReasonActiveKeyReplaced              = "ActiveKeyReplaced"
	ReasonActiveKeysRepaired             = "ActiveKeysRepaired"
	ReasonNextKeysRepaired               = "NextKeysRepaired"
	ReasonRevokeIgnored                  = "RevokeIgnored"
	ReasonKeysAdopted                    = "KeysAdopted"
	ReasonForcedRotationBreaksPEMClients = "ForcedRotationBreaksPEMClients"
	ReasonRevokeBreaksPEMClients         = "RevokeBreaksPEMClients"
	// TokenServer: its credentials.
	ReasonCredentialsGenerated       = "CredentialsGenerated"
	ReasonCredentialsRepaired        = "CredentialsRepaired"
	ReasonCredentialsRotated         = "CredentialsRotated"
	ReasonPreviousCredentialsCut     = "PreviousCredentialsCut"
	ReasonPreviousCredentialsRemoved = "PreviousCredentialsRemoved"
	ReasonTrustedProxiesUnset        = "TrustedProxiesUnset"
	// LivePersonAuthClient: its secret and LivePerson's console.
	// ReasonClientSecretGenerated is no longer emitted (a first secret has no Event); kept for
	// whoever filters old Events by it.
	ReasonClientSecretGenerated  = "ClientSecretGenerated"
	ReasonConsoleKeyAcknowledged = "ConsoleKeyAcknowledged"
	ReasonConsoleKeyUnknown      = "ConsoleKeyUnknown"
	// Any kind.
	ReasonUnknownAnnotation = "UnknownAnnotation"
)
