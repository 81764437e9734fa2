package server

import (
	"fmt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/canary"
	"github.com/warden-ai/warden/internal/guard/dlp"
	"github.com/warden-ai/warden/internal/guard/injection"
	"github.com/warden-ai/warden/internal/inspect"
	"github.com/warden-ai/warden/internal/policy"
)

// guardScanners are the scanners the guards run over every string of
// request and response bodies (DLP). The prompt-injection detector is not
// one of them: it must know whether a text is the caller's prompt or
// third-party content (a tool result), which a plain Scanner does not,
// and it does not score model output; see injectionGuard.
func guardScanners() []guard.Scanner {
	return []guard.Scanner{dlp.New()}
}

// injectionGuard adapts the prompt-injection detector (embedded weights)
// to the guards: prompts are scored with Detect, third-party content with
// DetectDocument. Its findings are guard.TypeInjection and
// guard.TypeIndirectInjection, class guard.ClassInjection. Nil when
// disabled. Weights that do not verify (injection.Default panics: a broken
// build) stop the start with an error.
func injectionGuard(cfg *config.GuardsInjection) (g *guard.InjectionGuard, err error) {
	if !cfg.On() {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("prompt-injection detector: %v", r)
		}
	}()
	d := injection.Default()
	if cfg.Threshold != nil {
		d = d.WithThreshold(*cfg.Threshold)
	}
	return &guard.InjectionGuard{
		Prompt:         verdictOf(d.Detect),
		Document:       verdictOf(d.DetectDocument),
		DocumentFields: cfg.DocumentFields,
	}, nil
}

func verdictOf(detect func([]byte) injection.Result) func([]byte) guard.Verdict {
	return func(text []byte) guard.Verdict {
		r := detect(text)
		v := guard.Verdict{Score: r.Score, Attack: r.Attack}
		if len(r.Hits) > 0 {
			v.Spans = make([]guard.Span, len(r.Hits))
			for i, h := range r.Hits {
				v.Spans[i] = guard.Span{Rule: h.Rule, Start: h.Start, End: h.End}
			}
		}
		return v
	}
}

// buildGuards returns the guards of cfg, or nil when they are disabled. It
// reads (or creates) the tenant hash key and the canary token file: a file
// that cannot be read stops the start.
func (s *Server) buildGuards(cfg *config.Config) (*inspect.Guards, error) {
	if !cfg.Guards.On() {
		s.logger.Warn("guards are disabled: bodies are not inspected and mask obligations deny")
		return nil, nil
	}
	key, err := cfg.Guards.HashKey()
	if err != nil {
		return nil, fmt.Errorf("guards: %w", err)
	}
	inj, err := injectionGuard(&cfg.Guards.Injection)
	if err != nil {
		return nil, fmt.Errorf("guards: %w", err)
	}
	g := &inspect.Guards{
		Scanner:        guard.Multi(guardScanners()...),
		Injection:      inj,
		Key:            key,
		MaxOutputBytes: cfg.Guards.MaxOutputBytes,
		Logger:         s.logger,
	}
	toks, err := cfg.Guards.CanaryTokens()
	if err != nil {
		return nil, fmt.Errorf("guards: %w", err)
	}
	if len(toks) > 0 {
		sc, err := canary.NewScanner(toks...)
		if err != nil {
			return nil, fmt.Errorf("guards: %w", err)
		}
		g.Canary = sc
		if cfg.Guards.Canary.Inject {
			g.CanaryToken = toks[0]
		}
	}
	return g, nil
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
