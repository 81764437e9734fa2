package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// Posture sources, the values of Assessment.PostureSource.
const (
	SourceHeader = "header" // a verified signed posture header
	SourceMTLS   = "mtls"   // the workload's SPIFFE ID, mapped by configuration
)

// Error codes of the stage.
const (
	CodeInvalidPosture     = "invalid_posture"     // 401: a posture header was presented and is not accepted
	CodeContextUnavailable = "context_unavailable" // 503: a context source is broken
)

// Public messages: they say nothing about which check failed.
const (
	msgInvalidPosture = "the device posture assertion was not accepted"
	msgUnavailable    = "the request context could not be assessed; the request was not forwarded"
)

// Options tune a Stage; the zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Risk gives the principal's risk score; nil: every score is 0.
	Risk RiskSource
	// Now is the clock posture assertions are checked against. Default time.Now.
	Now func() time.Time
}

// Stage is the assess stage. It runs after identify and the body reader
// and before authorize, and always sets ex.Assessment.
type Stage struct {
	header    string           // canonical name of the posture header, always removed
	posture   *PostureVerifier // nil: signed posture is off
	workloads []workloadRule   // workload posture rules, first match wins
	geo       *Geo             // nil: geo is off
	risk      RiskSource       // nil: 0
	now       func() time.Time // for posture assertions
	logger    *slog.Logger     // for reloads
	checks    map[string]func() error
}

// New builds the stage from a loaded config's context section: it loads the
// posture keys and opens the geo databases. Nothing is left open on error.
func New(cfg config.Context, opts Options) (*Stage, error) {
	s := &Stage{header: config.DefaultPostureHeader, risk: opts.Risk, now: opts.Now, logger: opts.Logger,
		checks: map[string]func() error{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if p := cfg.Posture; p != nil {
		if p.Header != "" {
			if err := config.CheckPostureHeader(p.Header); err != nil {
				return nil, fmt.Errorf("assess: posture header: %w", err)
			}
			s.header = p.Header
		}
		if p.JWKSFile != "" {
			v, err := NewPostureVerifier(*p, s.logger)
			if err != nil {
				return nil, err
			}
			s.posture = v
			s.checks["context_posture_keys"] = v.Healthy
		}
		rules, err := newWorkloadRules(p.Workloads)
		if err != nil {
			return nil, err
		}
		s.workloads = rules
	}
	s.header = textproto.CanonicalMIMEHeaderKey(s.header)
	if g := cfg.Geo; g != nil {
		geo, err := OpenGeo(*g, s.logger)
		if err != nil {
			return nil, err
		}
		s.geo = geo
		s.checks["context_geo"] = geo.Healthy
	}
	return s, nil
}

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex == nil || ex.Request == nil {
		return errors.New("assess: exchange without request")
	}
	a := &gateway.Assessment{}
	ex.Assessment = a
	// The assertion proves something to warden only: it never travels
	// upstream, whether it verifies or not (the proxy forwards unknown
	// headers as they are).
	presented := ex.Request.Header.Values(s.header)
	ex.Request.Header.Del(s.header)
	p := ex.Principal
	if p == nil {
		return errors.New("assess: stage ran before identify: no principal")
	}

	if s.risk != nil {
		a.Risk = clampRisk(s.risk.Risk(p.ID))
	}
	geo, err := s.geo.Locate(ex.SourceIP)
	if err != nil {
		return s.unavailable(ex, err)
	}
	a.Geo = geo

	if len(presented) > 0 && s.posture != nil {
		if len(presented) > 1 {
			return s.refuse(ex, invalid("%d %s headers; send one", len(presented), s.header))
		}
		posture, err := s.posture.Verify(presented[0], p.ID, s.now())
		switch {
		case errors.Is(err, ErrInvalidPosture):
			return s.refuse(ex, err)
		case err != nil:
			return s.unavailable(ex, err)
		}
		a.Posture, a.PostureSource = posture, SourceHeader
	}
	if a.Posture == nil {
		if m := workloadPosture(s.workloads, workloadID(p)); m != nil {
			a.Posture, a.PostureSource = m, SourceMTLS
		}
	}
	return next(ex)
}

// refuse ends the exchange with 401 invalid_posture. RFC 9110 §11.6.1
// requires a challenge on a 401: the one of the credential warden accepts.
func (s *Stage) refuse(ex *gateway.Exchange, err error) error {
	if ex.Writer != nil {
		ex.Writer.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
	}
	return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, CodeInvalidPosture, err, msgInvalidPosture)
}

// unavailable ends the exchange with 503: a broken source fails closed.
func (s *Stage) unavailable(ex *gateway.Exchange, err error) error {
	if ex.Writer != nil {
		ex.Writer.Header().Set("Retry-After", "1")
	}
	return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeContextUnavailable, err, msgUnavailable)
}

// Checks are the stage's readiness checks by name: the posture keys and the
// geo databases, when configured.
func (s *Stage) Checks() map[string]func() error {
	out := make(map[string]func() error, len(s.checks))
	for k, v := range s.checks {
		out[k] = v
	}
	return out
}

// Reload reloads the posture keys and the geo databases whose files changed.
func (s *Stage) Reload() error {
	var errs []error
	if s.posture != nil {
		errs = append(errs, s.posture.Reload())
	}
	if s.geo != nil {
		errs = append(errs, s.geo.Reload())
	}
	return errors.Join(errs...)
}

// Watch reloads changed files every interval (2s if interval <= 0) until
// ctx ends. Failures are logged and reported by the checks.
func (s *Stage) Watch(ctx context.Context, interval time.Duration) {
	if s.posture == nil && s.geo == nil {
		return
	}
	watch(ctx, interval, func() { _ = s.Reload() })
}

// Close closes the geo databases (each once its last lookup has finished).
// Lookups after Close fail closed.
func (s *Stage) Close() error {
	if s.geo == nil {
		return nil
	}
	return s.geo.Close()
}

var _ gateway.Stage = (*Stage)(nil)
