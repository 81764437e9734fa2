package mcp

import (
	"errors"
	"fmt"
	"net/url"
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

// Sessions binds MCP session ids to the principal that opened them. The
// table is keyed by digests of the ids; the id itself is held in memory
// only, so that a session whose opening credential fails can be ended at
// the server without waiting for its client (Sweep). It is safe for
// concurrent use.
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
	// What ending the session at the server takes, kept from the
	// initialize that opened it (and the latest protocol version used).
	id        string
	principal *gateway.Principal
	route     *gateway.Route
	path      *url.URL // the URL the client opened the session at
	protocol  string
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
	return s.bind(&gateway.Route{Name: route}, nil, id, p, revalidate)
}

// bind is Bind with what ending the session at the server takes: the
// route and the URL the client used (nil: the session is never ended at
// the server by Sweep).
func (s *Sessions) bind(rt *gateway.Route, path *url.URL, id string, p *gateway.Principal, revalidate func(time.Time) error) error {
	now := s.now()
	route := rt.Name
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
	s.m[k] = &session{owner: principalKey(p), revalidate: revalidate, last: now,
		id: id, principal: p, route: rt, path: path}
	return nil
}

// end marks the session ended: it stays, until idle, to be answered as
// revoked, and forgets its id and credential check.
func (cur *session) end() {
	cur.revoked, cur.revalidate = true, nil
	cur.id, cur.principal, cur.path = "", nil, nil
}

// sweptSession is a session Sweep ended: what ending it at the server takes.
type sweptSession struct {
	id, protocol string
	path         url.URL
	principal    *gateway.Principal
	route        *gateway.Route
}

// Sweep checks the opening credential of every live session and ends
// those whose credential failed, as Check would on their next message;
// it forgets sessions idle for too long. It returns the sessions it ended,
// for warden to end at the server: a client whose credential was revoked
// may never come back, and the server would keep the session until its
// own idle timeout. Credentials are checked outside the table's lock.
func (s *Sessions) Sweep() []sweptSession {
	now := s.now()
	type live struct {
		k   string
		cur *session
		fn  func(time.Time) error
	}
	var check []live
	s.mu.Lock()
	for k, cur := range s.m {
		switch {
		case now.Sub(cur.last) > s.idle:
			delete(s.m, k)
		case !cur.revoked && cur.revalidate != nil:
			check = append(check, live{k, cur, cur.revalidate})
		}
	}
	s.mu.Unlock()
	var ended []sweptSession
	for _, c := range check {
		if c.fn(now) == nil {
			continue
		}
		s.mu.Lock()
		if cur, ok := s.m[c.k]; ok && cur == c.cur && !cur.revoked {
			if cur.route != nil && cur.path != nil {
				ended = append(ended, sweptSession{id: cur.id, path: *cur.path, protocol: cur.protocol,
					principal: cur.principal, route: cur.route})
			}
			cur.end()
		}
		s.mu.Unlock()
	}
	return ended
}

// Check verifies that p may use session id on route: it exists, p opened
// it and the credential p opened it with is still valid. A session whose
// opening credential failed is ended: that Check and every later one
// return ErrSessionRevoked (the first wrapped in errSessionEndedNow).
func (s *Sessions) Check(route, id string, p *gateway.Principal) error {
	return s.check(route, id, p, "")
}

// check is Check that also records protocol, the Mcp-Protocol-Version the
// client used ("" : none), for warden's own requests in the session.
func (s *Sessions) check(route, id string, p *gateway.Principal, protocol string) error {
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
	if protocol != "" && cur.protocol != protocol && len(protocol) <= 64 {
		cur.protocol = protocol
	}
	reval := cur.revalidate
	s.mu.Unlock()
	if reval == nil || reval(now) == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok && !cur.revoked && cur.owner == principalKey(p) {
		cur.end()
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
