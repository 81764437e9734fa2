package respond

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity/mfa"
)

// Public error codes of the sanctions stage.
const (
	CodeQuarantined = "quarantined"
	CodeUnavailable = "sanctions_unavailable"
)

// stepUpAction is the step-up endpoint's action: a principal under
// require_mfa must still reach it to present its second factor.
const stepUpAction = "mfa.verify"

// Stage enforces sanctions. It runs right after identify, before the body
// is read and before anything else: a quarantined principal is refused with
// 403 "quarantined"; a principal under require_mfa without a verified second
// factor gets the RFC 9470 step-up challenge (mfa.StepUpRequired), except
// on the step-up endpoint; throttle is carried out by the limit stage
// (ThrottleClass). It sets ex.Sanctions for policy. While the store cannot
// be read every request is refused (503): a sanction is never forgotten
// silently.
type Stage struct {
	store *Store
	now   func() time.Time
	seen  authMemo
}

// NewStage returns the sanctions stage over store.
func NewStage(store *Store) *Stage { return &Stage{store: store, now: time.Now} }

// Handle implements gateway.Stage.
func (st *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	ex.Sanctions = nil
	p := ex.Principal
	if p == nil {
		return errors.New("respond: sanctions stage reached without a principal") // wiring fault: 500
	}
	st.seen.note(p.CredentialID, p.AuthMethod)
	a, err := st.store.Lookup(p.Kind, p.ID, st.now())
	if err != nil {
		ex.Writer.Header().Set("Retry-After", "1")
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeUnavailable, err,
			"the request cannot be checked right now; try again later")
	}
	if a.None() {
		return next(ex)
	}
	if a.Quarantine {
		// Nothing else: not why, not until when, not by whom.
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeQuarantined,
			fmt.Errorf("respond: %s %s is quarantined", p.Kind, p.ID), "access is suspended")
	}
	if a.RequireMFA && !p.MFA && ex.Action != stepUpAction {
		return mfa.StepUpRequired(ex)
	}
	if a.RequireMFA {
		ex.Sanctions = append(ex.Sanctions, RequireMFA)
	}
	if a.Throttle != "" {
		ex.Sanctions = append(ex.Sanctions, Throttle)
	}
	return next(ex)
}

// ThrottleClass is the limit stage's class override
// (limit.Stage.ClassOverride): the class of a throttle in force on p.
// While the store cannot be read the sanctions stage refuses every
// request, so this never runs then.
func (st *Stage) ThrottleClass(p *gateway.Principal) (string, bool) {
	if p == nil {
		return "", false
	}
	a, err := st.store.Lookup(p.Kind, p.ID, st.now())
	if err != nil || a.Throttle == "" {
		return "", false
	}
	return a.Throttle, true
}

// AuthMethodOf returns how a credential (by its non-secret id) was last
// proven at this warden, as far as it remembers ("api_key", "token", "jwt",
// "mtls"); ok is false when it has not seen the credential lately. The
// revoke action uses it to tell a warden token from a credential warden
// cannot revoke.
func (st *Stage) AuthMethodOf(credentialID string) (string, bool) {
	return st.seen.get(credentialID)
}

// authMemo remembers the auth method of recently seen credentials, bounded:
// when it holds memoMax entries it starts over.
type authMemo struct {
	m sync.Map // credential id → auth method
	n atomic.Int64
}

const memoMax = 1 << 16

func (m *authMemo) note(cred, method string) {
	if cred == "" {
		return
	}
	if v, ok := m.m.Load(cred); ok && v.(string) == method {
		return
	}
	if m.n.Add(1) > memoMax {
		m.m.Clear()
		m.n.Store(1)
	}
	m.m.Store(cred, method)
}

func (m *authMemo) get(cred string) (string, bool) {
	v, ok := m.m.Load(cred)
	if !ok {
		return "", false
	}
	return v.(string), true
}

var _ gateway.Stage = (*Stage)(nil)
