// Package rotation is the pure key lifecycle of a SigningKey: given the current keys, the time,
// the policy and the user's requests, it returns the next key set and when to look again. It
// does no I/O; the reconciler stores what it returns.
//
// The rules, which keep every relying party that caches the JWKS working:
//   - a key is published (Next) at least PublishAhead before it signs (Active);
//   - exactly one key is Active;
//   - a key stays published (Retired) for RetainAfterRetire after it stops signing;
//   - a forced rotation (the rotate annotation) may cut PublishAhead short, and says so.
package rotation

import (
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// MaxKeys is the most keys a set holds (status lists at most 16). With one Next and one Active
// key, that leaves room for MaxKeys-2 Retired keys; a rotation that would exceed it waits.
const MaxKeys = 16

// Policy is the SigningKey spec in the form the lifecycle needs.
type Policy struct {
	Algorithm         v1alpha1.SigningAlgorithm
	RSABits           int
	Every             time.Duration
	PublishAhead      time.Duration
	RetainAfterRetire time.Duration
	// Paused stops scheduled rotation (spec.rotation.paused).
	Paused bool
	// Held stops scheduled rotation until a PEM-mode client acknowledges the Next key.
	Held bool
}

// Requests are the one-off actions the user asked for with annotations.
type Requests struct {
	// Rotate promotes the Next key to Active now.
	Rotate bool
	// Revoke are the kids of keys to remove at once, each acted on (and reported) on its own.
	Revoke []string
}

// Generator makes a fresh private key for the policy's algorithm and size.
type Generator func() (jose.JSONWebKey, error)

// Event is something worth a Kubernetes Event.
type Event struct {
	Warning bool
	Reason  string
	Message string
	// Subject, when set, is the kid the event is about. Events of one reason on one object are
	// merged into a series unless their action differs, so per-key events name their key there.
	Subject string
}

// Result is the outcome of Advance.
type Result struct {
	// Keys is the new set, in creation order.
	Keys []keys.Key
	// NextDue is when Advance must run again (a rotation or a removal); zero when nothing is
	// scheduled.
	NextDue time.Time
	// NextRotation is when the Next key is planned to become Active; zero when scheduled rotation
	// is paused.
	NextRotation time.Time
	// HeldDue is set when the planned rotation time has passed but rotation is held for a
	// console update.
	HeldDue bool
	// Early is set when this step rotated before the Next key was published for PublishAhead.
	Early bool
	// Events describe what changed.
	Events []Event
}

// Advance applies one step of the lifecycle.
func Advance(set []keys.Key, now time.Time, p Policy, r Requests, gen Generator) (Result, error) {
	s := &step{now: now, p: p, gen: gen, keys: append([]keys.Key(nil), set...)}
	revokedActive := false
	for _, kid := range r.Revoke {
		revokedActive = s.revoke(kid) || revokedActive
	}
	s.oneActive()
	s.oneNext()
	s.forgetRetiredPrivateParts()
	s.removeExpired()
	s.dropUnusableNext()
	if err := s.ensureActive(revokedActive); err != nil {
		return Result{}, err
	}
	if err := s.ensureNext(); err != nil {
		return Result{}, err
	}
	planned := s.plan()
	if r.Rotate || (!p.Paused && !p.Held && !now.Before(planned)) {
		rotated, err := s.rotate(r.Rotate)
		if err != nil {
			return Result{}, err
		}
		if rotated {
			if err := s.ensureNext(); err != nil {
				return Result{}, err
			}
			planned = s.plan()
		}
	}
	return s.result(planned), nil
}

type step struct {
	now    time.Time
	p      Policy
	gen    Generator
	keys   []keys.Key
	early  bool
	events []Event
}

func (s *step) event(warning bool, reason, format string, args ...any) {
	s.events = append(s.events, Event{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (s *step) find(state v1alpha1.KeyState) int {
	for i, k := range s.keys {
		if k.State == state {
			return i
		}
	}
	return -1
}

func (s *step) remove(i int) { s.keys = append(s.keys[:i], s.keys[i+1:]...) }

func (s *step) fresh(state v1alpha1.KeyState) (keys.Key, error) {
	jwk, err := s.gen()
	if err != nil {
		return keys.Key{}, err
	}
	return keys.Key{JWK: jwk, State: state, CreatedAt: s.now}, nil
}

// revoke removes the key with this kid at once and reports whether it was the Active key.
func (s *step) revoke(kid string) bool {
	if kid == "" {
		return false
	}
	for i, k := range s.keys {
		if k.ID() == kid {
			s.remove(i)
			s.event(true, v1alpha1.ReasonKeyRevoked, "Revoked %s key %s: it is no longer published and no longer signs", k.State, kid)
			s.events[len(s.events)-1].Subject = kid
			return k.State == v1alpha1.KeyActive
		}
	}
	s.event(true, v1alpha1.ReasonRevokeIgnored, "No key %s to revoke (kids are listed in status.keys); it stays on the deny-list", kid)
	s.events[len(s.events)-1].Subject = kid
	return false
}

// oneActive repairs a set with more than one Active key (a hand-edited Secret): the first in
// creation order keeps signing, because it is the one token servers already sign with
// (keys.Active); the others are retired at once and stay published for RetainAfterRetire, since
// tokens they signed may be in flight.
func (s *step) oneActive() {
	first := s.find(v1alpha1.KeyActive)
	if first < 0 {
		return
	}
	for i := first + 1; i < len(s.keys); i++ {
		if k := &s.keys[i]; k.State == v1alpha1.KeyActive {
			k.State, k.RetiresAt, k.RemoveAt = v1alpha1.KeyRetired, s.now, s.now.Add(s.p.RetainAfterRetire)
			k.JWK = keys.PublicJWK(*k)
			s.event(true, v1alpha1.ReasonActiveKeysRepaired, "More than one key was Active: key %s keeps signing, key %s is retired and stays published until %s",
				s.keys[first].ID(), k.ID(), k.RemoveAt.UTC().Format(time.RFC3339))
		}
	}
}

// oneNext drops every Next key after the first: none of them ever signed.
func (s *step) oneNext() {
	first := s.find(v1alpha1.KeyNext)
	if first < 0 {
		return
	}
	for i := first + 1; i < len(s.keys); i++ {
		if k := s.keys[i]; k.State == v1alpha1.KeyNext {
			s.remove(i)
			i--
			s.event(true, v1alpha1.ReasonNextKeysRepaired, "More than one key was Next: dropped key %s, which never signed", k.ID())
		}
	}
}

// forgetRetiredPrivateParts keeps only the public part of Retired keys: they never sign again,
// so their private part at rest would only be something to steal.
func (s *step) forgetRetiredPrivateParts() {
	for i := range s.keys {
		if k := &s.keys[i]; k.State == v1alpha1.KeyRetired && k.CanSign() {
			k.JWK = keys.PublicJWK(*k)
		}
	}
}

func (s *step) removeExpired() {
	for i := 0; i < len(s.keys); i++ {
		if k := s.keys[i]; k.State == v1alpha1.KeyRetired && !s.now.Before(k.RemoveAt) {
			s.remove(i)
			i--
			s.event(false, v1alpha1.ReasonKeyRemoved, "Removed retired key %s from the JWKS", k.ID())
		}
	}
}

// dropUnusableNext drops a Next key that could never sign as the policy asks: one without its
// private part, or of another algorithm or size than the spec now says. It never signed, so
// dropping it is safe.
func (s *step) dropUnusableNext() {
	if i := s.find(v1alpha1.KeyNext); i >= 0 && (!s.keys[i].CanSign() || !s.matches(s.keys[i])) {
		s.event(false, v1alpha1.ReasonNextKeyReplaced, "Replacing next key %s: it does not match the spec (%s)", s.keys[i].ID(), s.describe())
		s.remove(i)
	}
}

func (s *step) matches(k keys.Key) bool {
	if k.Algorithm() != s.p.Algorithm {
		return false
	}
	return s.p.Algorithm == v1alpha1.ES256 || k.Bits() == s.p.RSABits
}

func (s *step) describe() string {
	if s.p.Algorithm == v1alpha1.ES256 {
		return string(s.p.Algorithm)
	}
	return fmt.Sprintf("%s, %d bits", s.p.Algorithm, s.p.RSABits)
}

// ensureActive makes sure one key signs. A revoked Active key is replaced by a fresh key, as the
// user asked; otherwise (a new set, or an Active key lost from a damaged Secret) the Next key is
// promoted when there is one, because relying parties may already have it cached.
func (s *step) ensureActive(revokedActive bool) error {
	if s.find(v1alpha1.KeyActive) >= 0 {
		return nil
	}
	if i := s.find(v1alpha1.KeyNext); i >= 0 && !revokedActive {
		k := &s.keys[i]
		if s.now.Before(k.CreatedAt.Add(s.p.PublishAhead)) {
			s.early = true
		}
		k.State, k.ActivatesAt = v1alpha1.KeyActive, s.now
		s.event(true, v1alpha1.ReasonActiveKeyReplaced, "No active key: promoted next key %s", k.ID())
		return nil
	}
	k, err := s.fresh(v1alpha1.KeyActive)
	if err != nil {
		return err
	}
	k.ActivatesAt = s.now
	s.keys = append(s.keys, k)
	if len(s.keys) > 1 || revokedActive {
		s.early = true
		s.event(true, v1alpha1.ReasonActiveKeyReplaced, "Activated fresh key %s at once: relying parties that cached the JWKS may fail until they refetch it", k.ID())
	} else {
		s.event(false, v1alpha1.ReasonKeyCreated, "Created active key %s (%s)", k.ID(), s.describe())
	}
	return nil
}

func (s *step) ensureNext() error {
	if s.find(v1alpha1.KeyNext) >= 0 {
		return nil
	}
	k, err := s.fresh(v1alpha1.KeyNext)
	if err != nil {
		return err
	}
	s.keys = append(s.keys, k)
	s.event(false, v1alpha1.ReasonKeysPublished, "Published next key %s (%s); it signs from the next rotation", k.ID(), s.describe())
	return nil
}

// plan computes when the Next key becomes Active and stamps it on both keys: Every after the
// Active key started, brought forward to PublishAhead after the Next key was made when the Active
// key no longer matches the spec, and never before the Next key was published for PublishAhead.
func (s *step) plan() time.Time {
	a, n := &s.keys[s.find(v1alpha1.KeyActive)], &s.keys[s.find(v1alpha1.KeyNext)]
	published := n.CreatedAt.Add(s.p.PublishAhead)
	planned := a.ActivatesAt.Add(s.p.Every)
	if !s.matches(*a) && published.Before(planned) {
		planned = published
	}
	if planned.Before(published) {
		planned = published
	}
	a.RetiresAt, n.ActivatesAt = planned, planned
	return planned
}

// rotate retires the Active key and promotes the Next one, unless the set is full of Retired
// keys still within their published window.
func (s *step) rotate(requested bool) (bool, error) {
	if len(s.keys) >= MaxKeys {
		s.event(requested, "RotationWaiting", "Not rotating: %d keys are already published; the next rotation waits until a retired key is removed", len(s.keys))
		return false, nil
	}
	a, n := &s.keys[s.find(v1alpha1.KeyActive)], &s.keys[s.find(v1alpha1.KeyNext)]
	early := s.now.Before(n.CreatedAt.Add(s.p.PublishAhead))
	a.State, a.RetiresAt, a.RemoveAt = v1alpha1.KeyRetired, s.now, s.now.Add(s.p.RetainAfterRetire)
	a.JWK = keys.PublicJWK(*a)
	n.State, n.ActivatesAt, n.RetiresAt = v1alpha1.KeyActive, s.now, time.Time{}
	if early {
		s.early = true
		s.event(true, v1alpha1.ReasonRotationEarly, "Rotated to key %s, published for less than publishAhead (%s): relying parties that cached the JWKS may fail verification until they refetch it", n.ID(), s.p.PublishAhead)
	} else {
		s.event(false, v1alpha1.ReasonKeyRotated, "Rotated: key %s signs now; key %s is retired and stays published until %s", n.ID(), a.ID(), a.RemoveAt.UTC().Format(time.RFC3339))
	}
	return true, nil
}

func (s *step) result(planned time.Time) Result {
	res := Result{Keys: s.keys, Early: s.early, Events: s.events}
	if !s.p.Paused {
		res.NextRotation = planned
		res.HeldDue = s.p.Held && !s.now.Before(planned)
		if !res.HeldDue {
			// A held rotation that is due needs no timer: the acknowledgement wakes it.
			res.NextDue = planned
		}
	}
	for _, k := range s.keys {
		if k.State == v1alpha1.KeyRetired && (res.NextDue.IsZero() || k.RemoveAt.Before(res.NextDue)) {
			res.NextDue = k.RemoveAt
		}
	}
	// A full set waits for its oldest retired key to go before it can rotate.
	if len(s.keys) >= MaxKeys && !res.NextRotation.IsZero() && res.NextRotation.Before(s.now) {
		res.NextRotation = time.Time{}
	}
	return res
}
