package server

import (
	"fmt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
	"github.com/warden-ai/warden/internal/inspect"
	"github.com/warden-ai/warden/internal/policy"
)

// guardScanners are the scanners the guards run over request and response
// bodies. Hook for the prompt-injection guard: once
// internal/guard/injection is stable, append a guard.Detector adapting
// injection.Default() here (its findings are ClassInjection) and the
// Detect stage will report them to policy like DLP findings.
func guardScanners() []guard.Scanner {
	return []guard.Scanner{dlp.New()}
}

// buildGuards returns the guards of cfg, or nil when they are disabled. It
// reads (or creates) the tenant hash key: a key that cannot be read stops
// the start.
func (s *Server) buildGuards(cfg *config.Config) (*inspect.Guards, error) {
	if !cfg.Guards.On() {
		s.logger.Warn("guards are disabled: bodies are not inspected and mask obligations deny")
		return nil, nil
	}
	key, err := cfg.Guards.HashKey()
	if err != nil {
		return nil, fmt.Errorf("guards: %w", err)
	}
	return &inspect.Guards{
		Scanner:        guard.Multi(guardScanners()...),
		Key:            key,
		MaxOutputBytes: cfg.Guards.MaxOutputBytes,
		Logger:         s.logger,
	}, nil
}

// guardStages returns the stages to run between grants and authorize (none
// when the guards are disabled).
func guardStages(g *inspect.Guards) []gateway.Stage {
	if g == nil {
		return nil
	}
	return []gateway.Stage{g.Detect()}
}

// wireGuards registers the mask enforcer on the authorize stage and the
// response inspector on the proxy.
func wireGuards(g *inspect.Guards, authorize *policy.Stage, proxy *gateway.Proxy) {
	if g == nil {
		return
	}
	authorize.Enforce(policy.ObligationMask, g.EnforceMask)
	proxy.SetResponseInspector(g.Responses())
}
