package mfa

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// attemptOutcome is how a verification attempt ended, for the limiter.
type attemptOutcome int

const (
	attemptAborted attemptOutcome = iota // a fault: neither a failure nor a success
	attemptFailed                        // not proven: counts against the user
	attemptOK                            // proven: clears the user's failures
)

// limiter counts failed verification attempts per user in a sliding window.
// Attempts in flight count too, so a burst of parallel guesses cannot get
// past the limit before the first failures are recorded.
type limiter struct {
	max    int
	window time.Duration

	mu      sync.Mutex
	users   map[string]*attempts
	sweepAt int // sweep stale entries when the map grows past this
}

type attempts struct {
	fails    []time.Time // oldest first, at most max
	inflight int
}

const minSweep = 1024

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, users: map[string]*attempts{}, sweepAt: minSweep}
}

// rateLimitError wraps ErrTooManyAttempts with the time to wait.
type rateLimitError struct{ retryAfter time.Duration }

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("%v; retry in %s", ErrTooManyAttempts, e.retryAfter.Round(time.Second))
}

func (e *rateLimitError) Unwrap() error { return ErrTooManyAttempts }

// RetryAfter reports how long to wait before the next attempt when err
// wraps ErrTooManyAttempts.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *rateLimitError
	if errors.As(err, &rl) {
		return rl.retryAfter, true
	}
	return 0, false
}

// begin admits one attempt for user at now, or refuses with an error
// wrapping ErrTooManyAttempts. The returned release must be called once with
// the attempt's outcome.
func (l *limiter) begin(user string, now time.Time) (release func(attemptOutcome), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.users) > l.sweepAt {
		l.sweep(now)
	}
	a := l.users[user]
	if a == nil {
		a = &attempts{}
		l.users[user] = a
	}
	a.prune(now, l.window)
	if len(a.fails)+a.inflight >= l.max {
		wait := time.Second // only attempts in flight: they end soon
		if len(a.fails) > 0 {
			wait = max(a.fails[0].Add(l.window).Sub(now), time.Second)
		}
		return nil, &rateLimitError{retryAfter: wait}
	}
	a.inflight++
	var once sync.Once
	return func(o attemptOutcome) {
		once.Do(func() { l.end(user, a, o, now) })
	}, nil
}

func (l *limiter) end(user string, a *attempts, o attemptOutcome, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.inflight--
	switch o {
	case attemptFailed:
		a.fails = append(a.fails, now)
		if len(a.fails) > l.max {
			a.fails = a.fails[len(a.fails)-l.max:]
		}
	case attemptOK:
		a.fails = nil
	}
	if a.inflight == 0 && len(a.fails) == 0 && l.users[user] == a {
		delete(l.users, user)
	}
}

// sweep drops users whose failures have all left the window.
func (l *limiter) sweep(now time.Time) {
	for u, a := range l.users {
		a.prune(now, l.window)
		if a.inflight == 0 && len(a.fails) == 0 {
			delete(l.users, u)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.users))
}

func (a *attempts) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(a.fails) && !now.Before(a.fails[i].Add(window)) {
		i++
	}
	if i > 0 {
		a.fails = append(a.fails[:0], a.fails[i:]...)
	}
}
