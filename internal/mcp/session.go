package mcp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// SessionHeader is the Streamable HTTP session header (MCP 2025-06-18,
// "Transports", Session Management).
const SessionHeader = "Mcp-Session-Id"

// Session errors.
var (
	// ErrSessionUnknown: no such session on this route (never opened
	// through warden, ended, idle too long, or warden restarted). The
	// client must initialize a new one (HTTP 404, as the transport says).
	ErrSessionUnknown = errors.New("mcp: unknown session")
	// ErrSessionOwner: the session was opened by another principal.
	ErrSessionOwner = errors.New("mcp: the session belongs to another principal")
	// ErrSessionRevoked: the credential that opened the session was
	// revoked or expired; the session is over.
	ErrSessionRevoked = errors.New("mcp: the credential that opened the session is no longer valid; the session has ended")
	// ErrSessionsFull: the session table is full.
	ErrSessionsFull = errors.New("mcp: too many open sessions")
	// errSessionEndedNow is ErrSessionRevoked from the Check that ended the
	// session: the one that ends it at the server too.
	errSessionEndedNow = fmt.Errorf("%w (just now)", ErrSessionRevoked)
)

// Sessions binds MCP session ids to the principal that opened them. Only
// digests of the ids are kept. It is safe for concurrent use.
type Sessions struct {
	mu   sync.Mutex
	m    map[string]*session // routeKey → session
	max  int
	idle time.Duration
	now  func() time.Time
}

type session struct {
	owner      string                // principalKey of the opener
	revalidate func(time.Time) error // the opener's credential check; nil: cannot change
	last       time.Time
	// revoked: the opener's credential failed and the session ended. It is
	// kept (until idle) so that its id is answered as revoked, not unknown.
	revoked bool
}

// NewSessions returns a table of at most max sessions (default 65536) that
// forgets a session idle for longer than idle (default 1h).
func NewSessions(max int, idle time.Duration) *Sessions {
	if max <= 0 {
		max = 1 << 16
	}
	if idle <= 0 {
		idle = time.Hour
	}
	return &Sessions{m: map[string]*session{}, max: max, idle: idle, now: time.Now}
}

// principalKey identifies a principal for session binding: its kind, id
// and the user it acts for. An agent acting for alice cannot continue a
// session the same agent opened for bob.
func principalKey(p *gateway.Principal) string {
	return p.Kind + "\x00" + p.ID + "\x00" + p.OnBehalfOf
}

func routeKey(route, id string) string { return route + "\x00" + digest([]byte(id)) }

// SessionDigest is what the audit record carries for a session id.
func SessionDigest(id string) string {
	if id == "" {
		return ""
	}
	return digest([]byte(id))[:32]
}

// ValidSessionID reports whether id is a session id the transport allows:
// visible ASCII (0x21-0x7E), here at most 256 bytes.
func ValidSessionID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// Bind records that p opened session id on route. Binding an id that is
// already bound to another principal fails (a server reusing ids must not
// hand one principal's session to another).
func (s *Sessions) Bind(route, id string, p *gateway.Principal, revalidate func(time.Time) error) error {
	now := s.now()
	k := routeKey(route, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok && now.Sub(cur.last) <= s.idle && cur.owner != principalKey(p) {
		return ErrSessionOwner
	}
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		for key, v := range s.m {
			if now.Sub(v.last) > s.idle {
				delete(s.m, key)
			}
		}
		if len(s.m) >= s.max {
			return ErrSessionsFull
		}
	}
	s.m[k] = &session{owner: principalKey(p), revalidate: revalidate, last: now}
	return nil
}

// Check verifies that p may use session id on route: it exists, p opened
// it and the credential p opened it with is still valid. A session whose
// opening credential failed is ended: that Check and every later one
// return ErrSessionRevoked (the first wrapped in errSessionEndedNow).
func (s *Sessions) Check(route, id string, p *gateway.Principal) error {
	now := s.now()
	k := routeKey(route, id)
	s.mu.Lock()
	cur, ok := s.m[k]
	if ok && now.Sub(cur.last) > s.idle {
		delete(s.m, k)
		ok = false
	}
	if !ok {
		s.mu.Unlock()
		return ErrSessionUnknown
	}
	if cur.owner != principalKey(p) {
		s.mu.Unlock()
		return ErrSessionOwner
	}
	if cur.revoked {
		s.mu.Unlock()
		return ErrSessionRevoked
	}
	cur.last = now
	reval := cur.revalidate
	s.mu.Unlock()
	if reval == nil || reval(now) == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok && !cur.revoked && cur.owner == principalKey(p) {
		cur.revoked, cur.revalidate = true, nil
		return errSessionEndedNow
	}
	return ErrSessionRevoked // another Check ended it meanwhile
}

// End forgets session id on route.
func (s *Sessions) End(route, id string) {
	s.mu.Lock()
	delete(s.m, routeKey(route, id))
	s.mu.Unlock()
}

// Len returns the number of sessions held.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
