package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/policy"
)

// policyParts are the authorize stage and what keeps its policy current.
type policyParts struct {
	stage    *policy.Stage
	reloader *policy.Reloader
	interval config.Duration // 0: the directory is not watched
}

// loadPolicy compiles the policy in cfg.Policy.Dir and builds the authorize
// stage around it: the input's time zone and networks, and the obligation
// enforcers the policy package provides (max_tokens, audit_level). The
// guards add mask (wireGuards) when they are enabled, and identity adds
// require_mfa when MFA is configured. rate_class has no enforcer until the
// limit stage exists, so a policy that returns it denies.
func (s *Server) loadPolicy(ctx context.Context, cfg *config.Config) (*policyParts, error) {
	loc, err := cfg.Policy.Location()
	if err != nil {
		return nil, err
	}
	nets, err := policy.NewNetworks(cfg.Policy.Networks)
	if err != nil {
		return nil, fmt.Errorf("policy.networks: %w", err)
	}
	engine, fingerprint, err := policy.LoadSnapshot(ctx, cfg.Policy.Dir)
	if err != nil {
		return nil, err
	}
	stage := policy.NewStage(engine, s.logger)
	stage.SetInputOptions(policy.InputOptions{Location: loc, Networks: nets})
	stage.SetMemoEntries(cfg.Policy.Memo())
	s.metrics.PolicyMemo(stage.MemoStats)
	for kind, fn := range policy.Enforcers() {
		stage.Enforce(kind, fn)
	}
	s.metrics.PolicyVersion(engine.Version())
	pp := &policyParts{stage: stage}
	pp.reloader = policy.NewReloader(cfg.Policy.Dir, stage, policy.ReloaderOptions{
		Logger:      s.logger,
		Fingerprint: fingerprint,
		OnResult:    func(r policy.ReloadResult) { s.metrics.PolicyReloaded(r.OK, r.Version) },
	})
	if cfg.Policy.ReloadOn() {
		pp.interval = cfg.Policy.ReloadInterval
	}
	return pp, nil
}

// watchPolicy reloads the policy when its files change (policy.reload) and
// on SIGHUP, until ctx ends.
func (s *Server) watchPolicy(ctx context.Context) {
	if s.policy.interval > 0 {
		go s.policy.reloader.Watch(ctx, s.policy.interval.D())
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.logger.Info("policy: SIGHUP: reloading")
				_ = s.policy.reloader.Reload(ctx) // reported by the reloader
			}
		}
	}()
}

// ReloadPolicy reloads the policy now, as SIGHUP does. The old policy stays
// in force if the new one does not compile or its tests fail.
func (s *Server) ReloadPolicy(ctx context.Context) error { return s.policy.reloader.Reload(ctx) }

// PolicyStatus returns the loaded policy's version, files and reload state.
func (s *Server) PolicyStatus() policy.Status { return s.policy.reloader.Status() }

// policyVersion is the version of the policy in force.
func (s *Server) policyVersion() string {
	if e := s.policy.stage.Engine(); e != nil {
		return e.Version()
	}
	return ""
}

// policyStatusResponse is the body of GET /policy on the admin listener.
type policyStatusResponse struct {
	policy.Status
	Reload struct {
		Watch    bool   `json:"watch"`
		Interval string `json:"interval,omitempty"`
	} `json:"reload"`
	Obligations []string `json:"obligations"` // obligation kinds this gateway enforces
}

// handlePolicy serves GET /policy: the policy in force and the last reload.
func (s *Server) handlePolicy(w http.ResponseWriter, _ *http.Request) {
	resp := policyStatusResponse{Status: s.policy.reloader.Status(), Obligations: s.policy.stage.Enforced()}
	resp.Reload.Watch = s.policy.interval > 0
	if resp.Reload.Watch {
		resp.Reload.Interval = s.policy.interval.D().String()
	}
	writeJSON(w, http.StatusOK, resp)
}
