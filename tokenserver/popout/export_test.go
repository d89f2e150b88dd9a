package popout

import (
	"sync/atomic"

	"github.com/lpauth/lpauth-operator/tokenserver/limiter"
)

var bcryptCalls atomic.Int64

// Counting is installed before any test runs, so no test writes the hook while a server reads it.
func init() {
	compare := compareHashAndPassword
	compareHashAndPassword = func(hash, password []byte) error {
		bcryptCalls.Add(1)
		return compare(hash, password)
	}
}

// BcryptCalls is how many bcrypt comparisons the login form has made. Tests that read it must
// not run in parallel with other login tests.
func BcryptCalls() int64 { return bcryptCalls.Load() }

// AllowLogin reports whether the login form would check a password of user from addr.
func AllowLogin(l *limiter.FailureLimiter, user, password, addr string) bool {
	ok, _ := newLoginLimits(l, user, password, addr).allow()
	return ok
}

// FailLogin counts a failed login of user from addr, as the login form does.
func FailLogin(l *limiter.FailureLimiter, user, password, addr string) {
	newLoginLimits(l, user, password, addr).fail()
}
