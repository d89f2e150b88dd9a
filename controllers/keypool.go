package controllers

import (
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lpauth/lpauth-operator/api/keys"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/rotation"
)

// KeyGenerator makes a private key; keys.Generate in production, something cheaper in tests.
type KeyGenerator func(alg v1alpha1.SigningAlgorithm, rsaBits int) (jose.JSONWebKey, error)

// keyPool keeps the keys generated for a SigningKey until they are stored in its Secret. A
// reconcile that loses a write conflict runs again and reuses them, so the cost of RSA key
// generation (tens of milliseconds to seconds) is never paid twice for one key.
type keyPool struct {
	generate KeyGenerator
	mu       sync.Mutex
	spare    map[types.UID][]jose.JSONWebKey
}

func newKeyPool(generate KeyGenerator) *keyPool {
	return &keyPool{generate: generate, spare: map[types.UID][]jose.JSONWebKey{}}
}

// generator hands out this object's spare keys of the wanted kind first, in order, then
// generates (and keeps) new ones. Each call of the returned function gives a different key.
func (p *keyPool) generator(uid types.UID, alg v1alpha1.SigningAlgorithm, rsaBits int) rotation.Generator {
	handed := map[string]bool{}
	return func() (jose.JSONWebKey, error) {
		p.mu.Lock()
		for _, jwk := range p.spare[uid] {
			if !handed[jwk.KeyID] && fits(jwk, alg, rsaBits) {
				handed[jwk.KeyID] = true
				p.mu.Unlock()
				return jwk, nil
			}
		}
		p.mu.Unlock()
		// Generated outside the lock: other objects' reconciles must not wait for it.
		jwk, err := p.generate(alg, rsaBits)
		if err != nil {
			return jose.JSONWebKey{}, err
		}
		p.mu.Lock()
		p.spare[uid] = append(p.spare[uid], jwk)
		p.mu.Unlock()
		handed[jwk.KeyID] = true
		return jwk, nil
	}
}

func fits(jwk jose.JSONWebKey, alg v1alpha1.SigningAlgorithm, rsaBits int) bool {
	k := keys.Key{JWK: jwk}
	return k.Algorithm() == alg && (alg == v1alpha1.ES256 || k.Bits() == rsaBits)
}

// stored forgets the spares that are now in the object's Secret.
func (p *keyPool) stored(uid types.UID, set []keys.Key) {
	in := map[string]bool{}
	for _, k := range set {
		in[k.ID()] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.spare[uid][:0]
	for _, jwk := range p.spare[uid] {
		if !in[jwk.KeyID] {
			kept = append(kept, jwk)
		}
	}
	if len(kept) == 0 {
		delete(p.spare, uid)
		return
	}
	p.spare[uid] = kept
}
