package limit

import (
	"context"
	"errors"
	"time"
)

// A Backend keeps the state of limits. Every method is safe for concurrent
// use. A returned error means the backend could not answer (unreachable,
// full, broken): the caller decides whether that fails closed or open.
type Backend interface {
	// Take evaluates every check at now and, only if all pass, charges
	// them all, atomically: a concurrent Take never sees a partial charge.
	// tag groups the keys of one principal (one shard, one cluster slot);
	// every check key must embed it (see Key).
	Take(ctx context.Context, tag string, now time.Time, checks []Check) (Result, error)
	// Add adds delta (negative: a refund) to window counters, without a
	// limit: it reconciles a reservation with the actual usage. A counter
	// never goes below zero; one whose window has ended is left alone.
	Add(ctx context.Context, tag string, now time.Time, adds []Adjustment) error
	// Ping reports whether the backend can answer.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// CheckKind is what a Check limits.
type CheckKind uint8

// Check kinds.
const (
	// KindRate is a GCRA rate limit: Cost events, one every Interval on
	// average, at most Burst at once.
	KindRate CheckKind = iota + 1
	// KindWindow is a counter over a fixed window that ends at End: the
	// counter plus Cost must stay within Limit.
	KindWindow
)

// Check is one limit applied to an exchange.
type Check struct {
	Key  string // the backend key; embeds the tag (Key builds it)
	Kind CheckKind
	Cost int64 // events (rate) or units (window) this exchange takes; 0 only checks

	// KindRate: Interval is the emission interval (the period divided by
	// the rate); Burst is how many events may pass at once, at least 1.
	Interval time.Duration
	Burst    int64

	// KindWindow: Limit is the most units in the window; End is when the
	// window ends (the counter expires then).
	Limit int64
	End   time.Time
}

// Adjustment changes a window counter by Delta.
type Adjustment struct {
	Key   string
	Delta int64
	End   time.Time // the window's end, as in the Check that reserved
}

// Result is the outcome of Take.
type Result struct {
	Allowed bool
	// Failed is the index of the first check that had no room, -1 when
	// allowed.
	Failed int
	// RetryAfter is how long until every check that failed would pass
	// (for the same cost); 0 when allowed.
	RetryAfter time.Duration
}

// Errors of backends.
var (
	// ErrFull is returned by Memory when it holds MaxKeys live keys and a
	// new one is needed: memory stays bounded, and the exchange is
	// treated as a backend failure (fail closed by default).
	ErrFull = errors.New("limit: in-process backend is full")
	// errBadCheck is a check the backend cannot evaluate: a wiring fault.
	errBadCheck = errors.New("limit: invalid check")
)

// maxChecks bounds the checks of one Take (and adjustments of one Add).
const maxChecks = 16

// Key builds a backend key for a check: the tag in braces (a Redis Cluster
// hash tag, so every key of a principal is in one slot), then the parts.
// Parts must not contain '{' or '}'.
func Key(tag string, parts ...string) string {
	n := len(tag) + 2
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	b = append(b, tag...)
	b = append(b, '}')
	for _, p := range parts {
		b = append(b, ':')
		b = append(b, p...)
	}
	return string(b)
}

// validChecks reports whether every check is well formed.
func validChecks(checks []Check) bool {
	if len(checks) == 0 || len(checks) > maxChecks {
		return false
	}
	for i := range checks {
		c := &checks[i]
		if c.Key == "" || c.Cost < 0 {
			return false
		}
		switch c.Kind {
		case KindRate:
			if c.Interval <= 0 || c.Burst < 1 {
				return false
			}
		case KindWindow:
			if c.Limit < 1 || c.End.IsZero() {
				return false
			}
		default:
			return false
		}
	}
	return true
}
