package popout

import (
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
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

// An unknown user's password is checked against a real user's hash, so an htpasswd made with a
// cheaper cost (htpasswd -B uses 5) does not make unknown users slower to refuse than known ones.
func TestUnknownUsersAreCheckedAgainstARealUsersHash(t *testing.T) {
	t.Parallel()
	cheap, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := &snapshot.StaticUsers{Hashes: map[string][]byte{"ada": cheap}}
	if got := decoyHash(users); string(got) != string(cheap) {
		t.Fatalf("decoy hash %q, want the real user's %q", got, cheap)
	}
	if checkPassword(users, "nobody", "s3cret") {
		t.Fatal("an unknown user with a real user's password was accepted")
	}
	if !checkPassword(users, "ada", "s3cret") || checkPassword(users, "ada", "wrong") {
		t.Fatal("a known user's password is not checked")
	}
	if got := decoyHash(&snapshot.StaticUsers{}); string(got) != string(dummyHash) {
		t.Fatal("no users: the decoy must be the built-in hash")
	}
}
