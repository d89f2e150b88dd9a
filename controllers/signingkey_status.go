package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// Pure status builders for SigningKey: inputs in, status fields out, no I/O.

// keyStatuses mirrors the public facts of a key set.
func keyStatuses(set []keys.Key) ([]v1alpha1.KeyStatus, error) {
	set = statusKeys(set)
	out := make([]v1alpha1.KeyStatus, 0, len(set))
	for _, k := range set {
		pub, err := json.Marshal(keys.PublicJWK(k))
		if err != nil {
			return nil, fmt.Errorf("encoding the public key %s: %w", k.ID(), err)
		}
		out = append(out, v1alpha1.KeyStatus{
			KeyID: k.ID(), Algorithm: k.Algorithm(), State: k.State,
			CreatedAt:   metav1.NewTime(k.CreatedAt),
			ActivatesAt: optionalTime(k.ActivatesAt),
			RetiresAt:   optionalTime(k.RetiresAt),
			RemoveAt:    optionalTime(k.RemoveAt),
			PublicJWK:   string(pub),
		})
	}
	return out, nil
}

// maxStatusKeys is the CRD's bound on status.keys.
const maxStatusKeys = v1alpha1.MaxStatusKeys

// statusKeys is the part of the set status can show: all of it, or, when repairs have left more
// published keys than status holds, the Active and Next keys and the newest retired ones, oldest
// first. (A status over the bound would be refused whole, leaving a stale status that says
// Ready.) The JWKS publishes every key whatever status shows.
func statusKeys(set []keys.Key) []keys.Key {
	if len(set) <= maxStatusKeys {
		return set
	}
	keep := map[string]bool{}
	for _, k := range set {
		if k.State != v1alpha1.KeyRetired {
			keep[k.ID()] = true
		}
	}
	for i := len(set) - 1; i >= 0 && len(keep) < maxStatusKeys; i-- {
		keep[set[i].ID()] = true
	}
	out := make([]keys.Key, 0, maxStatusKeys)
	for _, k := range set {
		if keep[k.ID()] && len(out) < maxStatusKeys {
			out = append(out, k)
		}
	}
	return out
}

func optionalTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// setKeyStatus writes everything status says about the stored set.
func setKeyStatus(sk *v1alpha1.SigningKey, set []keys.Key, secretName string, nextRotation time.Time, handledRotate, handledRevoke string, revoked []string) error {
	statuses, err := keyStatuses(set)
	if err != nil {
		return err
	}
	sk.Status.Keys = statuses
	sk.Status.SecretName = secretName
	sk.Status.NextRotationTime = optionalTime(nextRotation)
	sk.Status.LastRotateRequest = handledRotate
	sk.Status.LastRevokeRequest = truncateAnnotation(handledRevoke)
	sk.Status.RevokedKeyIDs = revoked
	sk.Status.ActiveKeyID, sk.Status.ActivePublicKey, sk.Status.NextPublicKey = "", "", ""
	for _, k := range set {
		if k.State == v1alpha1.KeyNext {
			spki, err := keys.SPKI(k)
			if err != nil {
				return err
			}
			sk.Status.NextPublicKey = spki
		}
	}
	if active, ok := keys.Active(set); ok {
		spki, err := keys.SPKI(active)
		if err != nil {
			return err
		}
		sk.Status.ActiveKeyID, sk.Status.ActivePublicKey = active.ID(), spki
	}
	return nil
}

// setTimingCondition: a new key must be published at least as long as relying parties cache
// the JWKS, or the first tokens it signs fail verification.
func setTimingCondition(sk *v1alpha1.SigningKey) {
	c := metav1.Condition{Type: v1alpha1.ConditionTimingValid, ObservedGeneration: sk.Generation, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled,
		Message: fmt.Sprintf("publishAhead (%s) covers the JWKS cache time (%s)", sk.Spec.Rotation.PublishAhead.Duration, v1alpha1.JWKSMaxAge)}
	if pa := sk.Spec.Rotation.PublishAhead.Duration; pa < v1alpha1.JWKSMaxAge {
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonPublishAheadTooShort
		c.Message = fmt.Sprintf("publishAhead is %s but relying parties may cache the JWKS for %s: a new key would sign before they can know it, and its first tokens fail verification; set spec.rotation.publishAhead to at least %s (LivePerson's own cache time is undocumented: hours are safer)", pa, v1alpha1.JWKSMaxAge, v1alpha1.JWKSMaxAge)
	}
	meta.SetStatusCondition(&sk.Status.Conditions, c)
}

// setSigningKeyReady: True once the Secret holds an Active key; otherwise the error says why.
func setSigningKeyReady(sk *v1alpha1.SigningKey, err error) {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: sk.Generation}
	switch {
	case err != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonReconcileError, err.Error()
		var nr *notReady
		if errors.As(err, &nr) {
			c.Reason = nr.reason
		}
	case sk.Status.ActiveKeyID == "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonReconcileError, "No active key yet"
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		c.Message = fmt.Sprintf("Key %s signs; %d keys published", sk.Status.ActiveKeyID, len(sk.Status.Keys))
	}
	meta.SetStatusCondition(&sk.Status.Conditions, c)
}

// setRotatingCondition says whether a rotation is under way and whether it was forced early.
// An early rotation keeps its reason until earlyUntil, when the new key will have been published
// for publishAhead, the time relying parties may still hold a JWKS without it.
func setRotatingCondition(sk *v1alpha1.SigningKey, set []keys.Key, earlyUntil time.Time, heldDue bool, now time.Time) {
	c := metav1.Condition{Type: v1alpha1.ConditionRotating, ObservedGeneration: sk.Generation}
	active, _ := keys.Active(set)
	retired := 0
	for _, k := range set {
		if k.State == v1alpha1.KeyRetired {
			retired++
		}
	}
	switch {
	case now.Before(earlyUntil):
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonRotationEarly
		c.Message = fmt.Sprintf("Key %s was activated before it had been published for publishAhead: relying parties that cached the JWKS may fail verification until %s",
			active.ID(), earlyUntil.UTC().Format(time.RFC3339))
	case heldDue:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonRotationHeld
		c.Message = "Rotation is due and waits for every PEM-mode LivePersonAuthClient to acknowledge the next key (see their ConsoleUpdateRequired condition)"
	case retired > 0:
		c.Status, c.Reason = metav1.ConditionTrue, "RetiredKeysPublished"
		c.Message = fmt.Sprintf("%d retired keys stay published until the tokens they signed expire", retired)
	case sk.Spec.Rotation.Paused:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonRotationPaused, "Scheduled rotation is paused (spec.rotation.paused)"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonIdle, "The next key is published and waits for its rotation time"
	}
	meta.SetStatusCondition(&sk.Status.Conditions, c)
}

// setDegradedCondition: True for retainAfterRetire after the operator repaired the Secret (the
// window in which keys it restored stay published), and while it still publishes keys whose
// private part was lost.
func setDegradedCondition(sk *v1alpha1.SigningKey, last repairRecord, set []keys.Key, now time.Time, window time.Duration) {
	c := metav1.Condition{Type: v1alpha1.ConditionDegraded, ObservedGeneration: sk.Generation}
	lost := 0
	for _, k := range set {
		if !k.CanSign() {
			lost++
		}
	}
	switch {
	case !last.at.IsZero() && now.Before(last.at.Add(window)):
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonSecretRecovered
		c.Message = fmt.Sprintf("Repaired the key Secret at %s: %s", formatTime(last.at), last.what)
	case lost > 0:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonSecretRecovered
		c.Message = fmt.Sprintf("%d published keys lost their private part and stay published until they expire", lost)
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonReconciled, "The key Secret is intact"
	}
	meta.SetStatusCondition(&sk.Status.Conditions, c)
}

func joinLimited(items []string, n int) string {
	if len(items) <= n {
		return fmt.Sprint(items)
	}
	return fmt.Sprintf("%v and %d more", items[:n], len(items)-n)
}
