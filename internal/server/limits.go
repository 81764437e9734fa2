package server

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/limit"
	"github.com/warden-ai/warden/internal/policy"
)

// buildLimits builds the limit stage of cfg.Limits, or nil when no class
// is configured (then a rate_class obligation denies: nobody enforces it).
// It registers the rate_class enforcer on the authorize stage. A Redis
// backend is pinged at start: in the closed failure mode an unreachable
// one stops the start (and is a readiness check afterwards); in the open
// mode it is logged and warden serves unlimited until Redis answers.
func (s *Server) buildLimits(ctx context.Context, cfg *config.Config, authorize *policy.Stage) (*limit.Stage, error) {
	lc := &cfg.Limits
	if !lc.On() {
		return nil, nil
	}
	var backend limit.Backend
	switch lc.Backend {
	case config.LimitsBackendRedis:
		pw, err := lc.Redis.Password()
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
		r, err := limit.NewRedis(limit.RedisOptions{
			Addrs: lc.Redis.Addresses, Username: lc.Redis.Username, Password: pw, DB: lc.Redis.DB,
			KeyPrefix: lc.Redis.KeyPrefix, Timeout: lc.Redis.Timeout.D(),
		})
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*lc.Redis.Timeout.D()+time.Second)
		perr := r.Ping(pctx)
		cancel()
		switch {
		case perr != nil && !lc.Open():
			_ = r.Close()
			return nil, fmt.Errorf("limits: redis is unreachable and limits.failure_mode is closed: %w", perr)
		case perr != nil:
			s.logger.Warn("limits: redis is unreachable; limits.failure_mode is open, so exchanges pass unlimited until it answers", "err", perr)
		}
		backend = r
	default:
		backend = limit.NewMemory(limit.MemoryOptions{MaxKeys: lc.MaxKeys})
	}
	var tok *limit.Tokenizer
	classes := make([]limit.Class, 0, len(lc.Classes))
	for _, c := range lc.Classes {
		lcl := limit.Class{Name: c.Name}
		if r := c.Requests; r != nil {
			lcl.Requests = &limit.RequestLimit{Limit: r.Limit, Per: r.Per.D(), Burst: r.Burst}
		}
		for _, w := range []struct {
			w limit.Window
			n int64
		}{{limit.Minute, c.Tokens.Minute}, {limit.Hour, c.Tokens.Hour}, {limit.Day, c.Tokens.Day}, {limit.Month, c.Tokens.Month}} {
			if w.n > 0 {
				lcl.Tokens = append(lcl.Tokens, limit.TokenLimit{Window: w.w, Limit: w.n})
			}
		}
		for _, b := range c.By {
			lcl.ByRoute = lcl.ByRoute || b == "route"
			lcl.ByModel = lcl.ByModel || b == "model"
		}
		if len(lcl.Tokens) > 0 && tok == nil {
			var err error
			if tok, err = limit.NewTokenizer(); err != nil {
				_ = backend.Close()
				return nil, fmt.Errorf("limits: %w", err)
			}
		}
		classes = append(classes, lcl)
	}
	st, err := limit.NewStage(limit.Options{
		Backend: backend, Classes: classes, Defaults: lc.Defaults.ByKind(), FailOpen: lc.Open(),
		Tokenizer: tok, Registerer: s.metrics.Registry(), Logger: s.logger,
	})
	if err != nil {
		_ = backend.Close()
		return nil, fmt.Errorf("limits: %w", err)
	}
	authorize.Enforce(policy.ObligationRateClass, st.EnforceRateClass)
	if lc.Backend == config.LimitsBackendRedis && !lc.Open() {
		s.extraChecks["limits"] = func() error {
			pctx, cancel := context.WithTimeout(context.Background(), lc.Redis.Timeout.D())
			defer cancel()
			return st.Ping(pctx)
		}
	}
	return st, nil
}

// limitStages returns the stages to run between authorize and the proxy
// (none when no limit is configured).
func limitStages(st *limit.Stage) []gateway.Stage {
	if st == nil {
		return nil
	}
	return []gateway.Stage{st}
}
