package popout

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The hash an unknown user's password is checked against must cost what a real user's does, or
// the time of the answer tells which user names exist.
func TestDummyHashCostsAsMuchAsARealOne(t *testing.T) {
	t.Parallel()
	if cost, err := bcrypt.Cost(dummyHash); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("dummy hash cost %d (%v), want bcrypt.DefaultCost %d", cost, err, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword(dummyHash, []byte("lpauth-no-such-user")); err != nil {
		t.Fatalf("the dummy hash is not a bcrypt hash of its documented password: %v", err)
	}
}
