package grant

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// Stage sets ex.Grants to the proven principal's active grants, by
// principal id, for the authorize stage after it. It runs after identify
// and before authorize.
//
// It fails closed: while the store cannot be read the exchange carries no
// grant (grants only ever add permissions, so the policy decides on the
// principal's standing permissions alone) and /readyz reports the store.
type Stage struct {
	store  *Store
	logger *slog.Logger
	now    func() time.Time

	lastErrLog atomic.Int64 // unix nanoseconds; errors are logged at most once a second
}

// NewStage returns the grant stage over s. A nil logger means slog.Default().
func NewStage(s *Store, logger *slog.Logger) *Stage {
	if logger == nil {
		logger = slog.Default()
	}
	return &Stage{store: s, logger: logger, now: time.Now}
}

// Handle implements gateway.Stage.
func (st *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	ex.Grants = nil
	if p := ex.Principal; p != nil && p.ID != "" {
		now := st.now()
		gs, err := st.store.Active(p.ID, now)
		if err != nil {
			st.logError(now, ex.ID, err)
			gs = nil
		}
		ex.Grants = gs
	}
	return next(ex)
}

func (st *Stage) logError(now time.Time, requestID string, err error) {
	n := now.UnixNano()
	last := st.lastErrLog.Load()
	if n-last < int64(time.Second) || !st.lastErrLog.CompareAndSwap(last, n) {
		return
	}
	st.logger.Error("grant: store unavailable; requests carry no just-in-time grants", "request_id", requestID, "err", err)
}

var _ gateway.Stage = (*Stage)(nil)
