package server

import (
	"context"
	"fmt"

	"github.com/warden-ai/warden/internal/assess"
	"github.com/warden-ai/warden/internal/config"
)

// buildAssess builds the assess stage from cfg.Context: posture keys and
// geo databases are loaded (a bad file stops the start), then watched for
// changes until ctx ends, when the databases are closed. Their health is a
// readiness check. The risk source is the behaviour engine's (built
// before); with behaviour disabled every principal's risk is 0.
func (s *Server) buildAssess(ctx context.Context, cfg *config.Config) (*assess.Stage, error) {
	st, err := assess.New(cfg.Context, assess.Options{Logger: s.logger, Risk: s.riskSource()})
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	for name, check := range st.Checks() {
		s.extraChecks[name] = check
	}
	go st.Watch(ctx, bundleWatchInterval)
	go func() {
		<-ctx.Done()
		_ = st.Close() // each database closes once its last lookup has finished
	}()
	return st, nil
}
