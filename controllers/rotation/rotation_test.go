package rotation

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ES256 keys are cheap to make; the lifecycle does not depend on the algorithm.
var policy = Policy{
	Algorithm: v1alpha1.ES256, Every: 30 * 24 * time.Hour,
	PublishAhead: 24 * time.Hour, RetainAfterRetire: 25 * time.Hour,
}

func gen(t testing.TB) Generator {
	return func() (jose.JSONWebKey, error) { return keys.Generate(v1alpha1.ES256, 0) }
}

// states summarises a set as "Retired,Active,Next" in creation order.
func states(set []keys.Key) string {
	s := make([]string, len(set))
	for i, k := range set {
		s[i] = string(k.State)
	}
	return strings.Join(s, ",")
}

func mustAdvance(t *testing.T, set []keys.Key, now time.Time, p Policy, r Requests) Result {
	t.Helper()
	res, err := Advance(set, now, p, r, gen(t))
	if err != nil {
		t.Fatalf("Advance: %v", err)
	}
	return res
}

func reasons(evs []Event) string {
	var r []string
	for _, e := range evs {
		r = append(r, e.Reason)
	}
	return strings.Join(r, ",")
}

func TestAdvance(t *testing.T) {
	// A set as the lifecycle leaves it at t0: one Active and one Next key.
	start := func(t *testing.T) []keys.Key { return mustAdvance(t, nil, t0, policy, Requests{}).Keys }
	day := 24 * time.Hour
	heldPolicy, pausedPolicy, rsaPolicy := policy, policy, policy
	heldPolicy.Held, pausedPolicy.Paused = true, true
	rsaPolicy.Algorithm, rsaPolicy.RSABits = v1alpha1.PS256, 2048

	for _, tc := range []struct {
		name        string
		set         func(t *testing.T) []keys.Key
		now         time.Time
		p           Policy
		r           Requests
		wantStates  string
		wantDue     time.Time
		wantRot     time.Time
		wantEarly   bool
		wantEvents  string
		wantHeldDue bool
	}{{
		name: "a new set gets an active key at once and a next key",
		set:  func(*testing.T) []keys.Key { return nil }, now: t0, p: policy,
		wantStates: "Active,Next", wantDue: t0.Add(30 * day), wantRot: t0.Add(30 * day),
		wantEvents: "KeyCreated,NextKeyPublished",
	}, {
		name: "nothing happens before the rotation is due",
		set:  start, now: t0.Add(29 * day), p: policy,
		wantStates: "Active,Next", wantDue: t0.Add(30 * day), wantRot: t0.Add(30 * day),
	}, {
		name: "a due rotation retires the active key and publishes a new next key",
		set:  start, now: t0.Add(30 * day), p: policy,
		wantStates: "Retired,Active,Next", wantDue: t0.Add(30*day + 25*time.Hour), wantRot: t0.Add(60 * day),
		wantEvents: "KeyRotated,NextKeyPublished",
	}, {
		name: "a paused set does not rotate and plans nothing",
		set:  start, now: t0.Add(40 * day), p: pausedPolicy,
		wantStates: "Active,Next",
	}, {
		name: "a set held for a console update does not rotate and sets no timer once due",
		set:  start, now: t0.Add(40 * day), p: heldPolicy,
		wantStates: "Active,Next", wantRot: t0.Add(30 * day), wantHeldDue: true,
	}, {
		name: "a held set still wakes at the planned time",
		set:  start, now: t0.Add(2 * day), p: heldPolicy,
		wantStates: "Active,Next", wantDue: t0.Add(30 * day), wantRot: t0.Add(30 * day),
	}, {
		name: "a requested rotation after publishAhead is a normal rotation",
		set:  start, now: t0.Add(2 * day), p: policy, r: Requests{Rotate: true},
		wantStates: "Retired,Active,Next", wantDue: t0.Add(2*day + 25*time.Hour), wantRot: t0.Add(32 * day),
		wantEvents: "KeyRotated,NextKeyPublished",
	}, {
		name: "a requested rotation before publishAhead happens and warns",
		set:  start, now: t0.Add(time.Hour), p: policy, r: Requests{Rotate: true},
		wantStates: "Retired,Active,Next", wantDue: t0.Add(26 * time.Hour), wantRot: t0.Add(30*day + time.Hour),
		wantEarly: true, wantEvents: "RotatedBeforePublishAhead,NextKeyPublished",
	}, {
		name: "a requested rotation acts even when paused",
		set:  start, now: t0.Add(2 * day), p: pausedPolicy, r: Requests{Rotate: true},
		wantStates: "Retired,Active,Next", wantDue: t0.Add(2*day + 25*time.Hour),
		wantEvents: "KeyRotated,NextKeyPublished",
	}, {
		name: "a retired key leaves when its window ends",
		set: func(t *testing.T) []keys.Key {
			return mustAdvance(t, start(t), t0.Add(30*day), policy, Requests{}).Keys
		},
		now: t0.Add(30*day + 25*time.Hour), p: policy,
		wantStates: "Active,Next", wantDue: t0.Add(60 * day), wantRot: t0.Add(60 * day),
		wantEvents: "KeyRemoved",
	}, {
		name: "an unknown kid is not revoked, and says so",
		set:  start, now: t0.Add(day), p: policy, r: Requests{Revoke: []string{"no-such-kid"}},
		wantStates: "Active,Next", wantDue: t0.Add(30 * day), wantRot: t0.Add(30 * day),
		wantEvents: "RevokeIgnored",
	}, {
		name: "a next key of the old algorithm is replaced and the rotation brought forward",
		set:  start, now: t0.Add(2 * day), p: rsaPolicy,
		wantStates: "Active,Next", wantDue: t0.Add(3 * day), wantRot: t0.Add(3 * day),
		wantEvents: "NextKeyReplaced,NextKeyPublished",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustAdvance(t, tc.set(t), tc.now, tc.p, tc.r)
			if got := states(res.Keys); got != tc.wantStates {
				t.Errorf("states = %s, want %s", got, tc.wantStates)
			}
			if !res.NextDue.Equal(tc.wantDue) {
				t.Errorf("NextDue = %v, want %v", res.NextDue, tc.wantDue)
			}
			if !res.NextRotation.Equal(tc.wantRot) {
				t.Errorf("NextRotation = %v, want %v", res.NextRotation, tc.wantRot)
			}
			if res.HeldDue != tc.wantHeldDue {
				t.Errorf("HeldDue = %v, want %v", res.HeldDue, tc.wantHeldDue)
			}
			if res.Early != tc.wantEarly {
				t.Errorf("Early = %v, want %v", res.Early, tc.wantEarly)
			}
			if got := reasons(res.Events); got != tc.wantEvents {
				t.Errorf("events = %s, want %s", got, tc.wantEvents)
			}
		})
	}
}

func TestRevokeActiveActivatesAFreshKeyAndKeepsNext(t *testing.T) {
	set := mustAdvance(t, nil, t0, policy, Requests{}).Keys
	active, next := set[0], set[1]
	res := mustAdvance(t, set, t0.Add(48*time.Hour), policy, Requests{Revoke: []string{active.ID()}})
	if got := states(res.Keys); got != "Next,Active" {
		t.Fatalf("states = %s, want Next,Active", got)
	}
	if res.Keys[0].ID() != next.ID() {
		t.Errorf("the next key changed: got %s, want %s", res.Keys[0].ID(), next.ID())
	}
	for _, k := range res.Keys {
		if k.ID() == active.ID() {
			t.Fatalf("revoked key %s is still in the set", active.ID())
		}
	}
	if !res.Early || reasons(res.Events) != "KeyRevoked,ActiveKeyReplaced" {
		t.Errorf("Early = %v, events = %s; want a warned, early replacement", res.Early, reasons(res.Events))
	}
}

func TestLostActiveKeyPromotesNext(t *testing.T) {
	set := mustAdvance(t, nil, t0, policy, Requests{}).Keys
	next := set[1]
	res := mustAdvance(t, set[1:], t0.Add(72*time.Hour), policy, Requests{})
	if got := states(res.Keys); got != "Active,Next" || res.Keys[0].ID() != next.ID() {
		t.Errorf("states = %s with first key %s, want the old next key %s Active", got, res.Keys[0].ID(), next.ID())
	}
}

func TestFullSetWaitsToRotate(t *testing.T) {
	p := policy
	p.RetainAfterRetire = 5000 * time.Hour
	set := mustAdvance(t, nil, t0, p, Requests{}).Keys
	now := t0
	for i := 0; i < MaxKeys-2; i++ {
		now = now.Add(30 * time.Hour)
		set = mustAdvance(t, set, now, p, Requests{Rotate: true}).Keys
	}
	if len(set) != MaxKeys {
		t.Fatalf("len(set) = %d, want %d", len(set), MaxKeys)
	}
	res := mustAdvance(t, set, now.Add(30*time.Hour), p, Requests{Rotate: true})
	if len(res.Keys) != MaxKeys || reasons(res.Events) != "RotationWaiting" {
		t.Errorf("len = %d, events = %s; want the full set unchanged and RotationWaiting", len(res.Keys), reasons(res.Events))
	}
	// A scheduled rotation that is due waits too, and no rotation time is planned (status shows
	// none, so lpauth_operator_signingkey_next_rotation_timestamp_seconds is absent and
	// LPAuthSigningKeyRotationOverdue cannot fire): LPAuthSigningKeySetFull, on
	// lpauth_operator_signingkey_keys adding up to MaxKeys, covers it.
	late := now.Add(p.Every + time.Hour)
	res = mustAdvance(t, set, late, p, Requests{})
	if len(res.Keys) != MaxKeys || !res.NextRotation.IsZero() {
		t.Errorf("a full set, due: len = %d, next rotation %v; want the set unchanged and no planned rotation", len(res.Keys), res.NextRotation)
	}
}

func TestAYearOfScheduledRotations(t *testing.T) {
	set, now := []keys.Key(nil), t0
	rotations := 0
	for now.Before(t0.AddDate(1, 0, 0)) {
		res := mustAdvance(t, set, now, policy, Requests{})
		for _, e := range res.Events {
			if e.Reason == "KeyRotated" {
				rotations++
			}
			if e.Warning {
				t.Fatalf("%v: unexpected warning %s: %s", now, e.Reason, e.Message)
			}
		}
		checkInvariants(t, res.Keys, policy)
		set = res.Keys
		now = res.NextDue // no polling: jump straight to the next due time
	}
	if rotations != 12 {
		t.Errorf("rotations in a year = %d, want 12 (every 30 days)", rotations)
	}
}

func checkInvariants(t *testing.T, set []keys.Key, p Policy) {
	t.Helper()
	count := map[v1alpha1.KeyState]int{}
	for _, k := range set {
		count[k.State]++
	}
	if count[v1alpha1.KeyActive] != 1 || count[v1alpha1.KeyNext] != 1 {
		t.Fatalf("states %s: want exactly one Active and one Next key", states(set))
	}
	if len(set) > MaxKeys {
		t.Fatalf("%d keys, more than %d", len(set), MaxKeys)
	}
}

// token is an id_token the simulated server signed.
type token struct {
	jws     string
	kid     string
	exp     time.Time
	revoked bool
}

// TestPropertyTokensStayVerifiable plays random sequences of time steps, requested rotations,
// revocations and crashes (a step computed but never stored), signing tokens with the Active key
// throughout. Every token must verify against the published set until it expires, unless its key
// was revoked; and without forced rotations, no key signs before it was published for
// PublishAhead.
func TestPropertyTokensStayVerifiable(t *testing.T) {
	lifetime := time.Hour
	p := policy
	p.Every, p.PublishAhead, p.RetainAfterRetire = 6*time.Hour, 2*time.Hour, lifetime+time.Minute
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, seed))
			var set []keys.Key
			var tokens []token
			now := t0
			activatedAt := map[string]time.Time{}
			for step := 0; step < 120; step++ {
				now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
				var r Requests
				switch op := rng.IntN(10); {
				case op == 0:
					r.Rotate = true
				case op == 1 && len(set) > 0:
					r.Revoke = []string{set[rng.IntN(len(set))].ID()}
					if rng.IntN(3) == 0 {
						r.Revoke = append(r.Revoke, set[rng.IntN(len(set))].ID())
					}
				}
				wasEmpty := len(set) == 0 // the first key of a set signs at once: nobody cached anything yet
				res, err := Advance(set, now, p, r, gen(t))
				if err != nil {
					t.Fatal(err)
				}
				if rng.IntN(8) == 0 {
					continue // a crash or conflict: nothing stored, the next step starts over
				}
				set = res.Keys
				checkInvariants(t, set, p)
				// The planned rotation never comes before the Next key has been published for
				// PublishAhead: LPAuthNoNextKeyPublishedAhead relies on it and looks only for a
				// missing Next key; only an early rotation (res.Early, the operator's
				// lpauth_operator_signingkey_rotated_early_until_timestamp_seconds and
				// LPAuthSigningKeyRotatedEarly) can make a key sign sooner.
				if next := set[slices.IndexFunc(set, func(k keys.Key) bool { return k.State == v1alpha1.KeyNext })]; !res.NextRotation.IsZero() && res.NextRotation.Before(next.CreatedAt.Add(p.PublishAhead)) {
					t.Fatalf("next rotation %v comes before key %s has been published for publishAhead (%v)", res.NextRotation, next.ID(), next.CreatedAt.Add(p.PublishAhead))
				}
				for i := range tokens {
					if slices.Contains(r.Revoke, tokens[i].kid) {
						tokens[i].revoked = true
					}
				}
				active, _ := keys.Active(set)
				if _, seen := activatedAt[active.ID()]; !seen {
					activatedAt[active.ID()] = now
					if !res.Early && !wasEmpty && now.Sub(active.CreatedAt) < p.PublishAhead {
						t.Fatalf("key %s signs %v after it was published, less than publishAhead, without a warning", active.ID(), now.Sub(active.CreatedAt))
					}
				}
				tokens = append(tokens, sign(t, active, now.Add(lifetime)))
				verifyAll(t, set, tokens, now)
			}
		})
	}
}

func sign(t *testing.T, k keys.Key, exp time.Time) token {
	s, err := signer.New(k)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token{jws: jws, kid: k.ID(), exp: exp}
}

func verifyAll(t *testing.T, set []keys.Key, tokens []token, now time.Time) {
	t.Helper()
	published := map[string]keys.Key{}
	for _, k := range set {
		published[k.ID()] = k
	}
	for _, tok := range tokens {
		if tok.revoked || !now.Before(tok.exp) {
			continue
		}
		k, ok := published[tok.kid]
		if !ok {
			t.Fatalf("at %v a token signed by %s (exp %v) has no published key", now, tok.kid, tok.exp)
		}
		obj, err := jose.ParseSigned(tok.jws, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		pub := keys.PublicJWK(k)
		if _, err := obj.Verify(&pub); err != nil {
			t.Fatalf("token signed by %s does not verify with the published key: %v", tok.kid, err)
		}
	}
}

// Revocation is a set: every kid asked for is removed in one step, each with its own event.
func TestRevokeIsASetNotALastValue(t *testing.T) {
	set := mustAdvance(t, nil, t0, policy, Requests{}).Keys
	set = mustAdvance(t, set, t0.Add(48*time.Hour), policy, Requests{Rotate: true}).Keys // Retired, Active, Next
	if got := states(set); got != "Retired,Active,Next" {
		t.Fatalf("setup: states = %s", got)
	}
	retired, active := set[0], set[1]
	res := mustAdvance(t, set, t0.Add(49*time.Hour), policy, Requests{Revoke: []string{retired.ID(), active.ID()}})
	for _, k := range res.Keys {
		if k.ID() == retired.ID() || k.ID() == active.ID() {
			t.Errorf("revoked key %s (%s) is still in the set", k.ID(), k.State)
		}
	}
	if got, want := reasons(res.Events), "KeyRevoked,KeyRevoked,ActiveKeyReplaced"; got != want {
		t.Errorf("events = %s, want %s (one per revoked kid)", got, want)
	}
}

// A hand-edited Secret with two Active keys is repaired: the first keeps signing, the other is
// retired (published, public part only), with a warning.
func TestTwoActiveKeysAreRepairedToOne(t *testing.T) {
	set := mustAdvance(t, nil, t0, policy, Requests{}).Keys
	set[1].State, set[1].ActivatesAt = v1alpha1.KeyActive, t0
	res := mustAdvance(t, set, t0.Add(time.Hour), policy, Requests{})
	var active []string
	for _, k := range res.Keys {
		if k.State == v1alpha1.KeyActive {
			active = append(active, k.ID())
		}
	}
	if len(active) != 1 || active[0] != set[0].ID() {
		t.Fatalf("active keys = %v, want only %s", active, set[0].ID())
	}
	var demoted *keys.Key
	for i := range res.Keys {
		if res.Keys[i].ID() == set[1].ID() {
			demoted = &res.Keys[i]
		}
	}
	if demoted == nil || demoted.State != v1alpha1.KeyRetired || demoted.CanSign() || !demoted.RemoveAt.Equal(t0.Add(time.Hour).Add(policy.RetainAfterRetire)) {
		t.Fatalf("second active key = %+v, want Retired without private part until now+retain", demoted)
	}
	if !strings.Contains(reasons(res.Events), "ActiveKeysRepaired") || !res.Events[0].Warning {
		t.Errorf("events = %s, want a warning ActiveKeysRepaired", reasons(res.Events))
	}
}

// Retired keys never sign again, so their private part is not kept at rest.
func TestRetiredKeysKeepNoPrivatePart(t *testing.T) {
	set := mustAdvance(t, nil, t0, policy, Requests{}).Keys
	res := mustAdvance(t, set, t0.Add(48*time.Hour), policy, Requests{Rotate: true})
	for _, k := range res.Keys {
		if k.State == v1alpha1.KeyRetired && k.CanSign() {
			t.Errorf("retired key %s kept its private part", k.ID())
		}
	}
	// A set stored by an older operator, with a private Retired key, is cleaned too.
	old := res.Keys
	for i := range old {
		if old[i].State == v1alpha1.KeyRetired {
			old[i].JWK = set[0].JWK // the private key it had
		}
	}
	for _, k := range mustAdvance(t, old, t0.Add(49*time.Hour), policy, Requests{}).Keys {
		if k.State == v1alpha1.KeyRetired && k.CanSign() {
			t.Errorf("retired key %s read with its private part kept it", k.ID())
		}
	}
}
