package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ai/warden/internal/assess"
	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// actionBehaviorAnomaly is the audit action of an anomaly record.
const actionBehaviorAnomaly = "behavior.anomaly"

// buildBehavior builds the behaviour engine of cfg.Behavior and starts its
// goroutine, which writes each anomaly's audit record (action
// behavior.anomaly) and then hands it to the responder, until ctx ends.
// It returns nil when behaviour is disabled. It runs before buildAssess
// (which reads risk from it) and before buildResponses: the responder is
// looked up when an anomaly is delivered.
func (s *Server) buildBehavior(ctx context.Context, cfg *config.Config) (*behavior.Engine, error) {
	bc := &cfg.Behavior
	if !bc.Enabled {
		return nil, nil
	}
	m, err := newBehaviorMetrics(s.metrics.Registry())
	if err != nil {
		return nil, fmt.Errorf("behavior: %w", err)
	}
	e, err := behavior.New(behavior.Options{
		Threshold: bc.Threshold, Warmup: bc.Warmup, Window: bc.Window, HalfLife: bc.HalfLife.D(),
		Cooldown: bc.Cooldown.D(), MaxPrincipals: bc.MaxPrincipals, MaxNetworks: bc.MaxNetworks, IdleTTL: bc.IdleTTL.D(),
		Record: func(ctx context.Context, a behavior.Anomaly) error {
			s.logger.Warn("behavior: anomaly", "principal", a.Principal, "score", a.Score, "risk", a.Risk, "reason", a.Reason)
			return s.audit.Append(ctx, anomalyRecord(a))
		},
		Responder: lazyResponder{s},
		Hooks:     m.hooks(),
		Logger:    s.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("behavior: %w", err)
	}
	m.watch(e)
	// e.Run is started by New once the responder exists (startBehavior).
	return e, nil
}

// behaviorStage is the observing stage, run right after audit; with
// behaviour disabled it only passes the exchange on.
func behaviorStage(e *behavior.Engine) gateway.Stage {
	if e == nil {
		return gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error { return next(ex) })
	}
	return behavior.NewStage(e)
}

// riskSource is the assess stage's risk source: the engine, or nil (every
// risk 0) when behaviour is disabled. A nil *Engine must not become a
// non-nil interface.
func (s *Server) riskSource() assess.RiskSource {
	if s.behavior == nil {
		return nil
	}
	return s.behavior
}

// startBehavior starts the engine's goroutine. New calls it after every
// component the engine reports to (the responder) is built, so the engine
// never reads a field New is still writing.
func (s *Server) startBehavior(ctx context.Context) {
	if s.behavior != nil {
		go s.behavior.Run(ctx)
	}
}

// lazyResponder hands anomalies to the server's responder, which is built
// after the engine; none (responses disabled) is not an error.
type lazyResponder struct{ s *Server }

func (l lazyResponder) Respond(ctx context.Context, a behavior.Anomaly) error {
	if l.s.responder == nil {
		return nil
	}
	return l.s.responder.Respond(ctx, a)
}

// anomalyRecord is the audit record of an anomaly. No client request is
// its own: it has a fresh request id and the path of the behaviour
// resource; Reason names the exchange that tipped it, the score, the risk
// and every driving feature with its value, baseline and score; Findings
// list the features (guard "behavior", type the feature, score its share
// of the anomaly score).
func anomalyRecord(a behavior.Anomaly) *audit.Record {
	var b strings.Builder
	fmt.Fprintf(&b, "anomaly score %.2f, risk %.2f: %s", a.Score, a.Risk, a.Reason)
	if a.RequestID != "" {
		fmt.Fprintf(&b, "; tipped by request %s", a.RequestID)
	}
	b.WriteString("; features:")
	total := 0.0
	for _, f := range a.Features {
		total += f.Score
	}
	rec := &audit.Record{
		Time:      a.At,
		RequestID: gateway.NewRequestID(),
		Path:      "/v1/warden/behavior/anomalies",
		Action:    actionBehaviorAnomaly,
		Code:      "behavior_anomaly",
	}
	for _, f := range a.Features {
		fmt.Fprintf(&b, " %s=%g (baseline %g, score %g)", f.Name, f.Value, f.Baseline, f.Score)
		share := 0.0
		if total > 0 {
			share = f.Score / total
		}
		rec.Findings = append(rec.Findings, audit.Finding{Guard: "behavior", Type: f.Name, Class: "anomaly",
			Where: "behavior", Score: share, Action: "flagged"})
	}
	rec.Reason = b.String()
	if a.Kind == behavior.KindNetwork {
		rec.SourceIP = a.ID
	} else {
		rec.Principal = &audit.Principal{Kind: a.Kind, ID: a.ID, CredentialID: a.Credential}
	}
	return rec
}

// behaviorMetrics are the engine's Prometheus metrics.
type behaviorMetrics struct {
	anomalies *prometheus.CounterVec
	dropped   prometheus.Counter
	recordErr prometheus.Counter
	respErr   prometheus.Counter
	evicted   prometheus.Counter
	reg       prometheus.Registerer
}

func newBehaviorMetrics(reg prometheus.Registerer) (*behaviorMetrics, error) {
	m := &behaviorMetrics{reg: reg,
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_behavior_anomalies_total",
			Help: "Behaviour anomalies, by driving feature (an anomaly counts once per feature)."}, []string{"feature"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_behavior_reports_dropped_total",
			Help: "Anomaly reports dropped because the engine's queue was full (the risk was raised all the same)."}),
		recordErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_behavior_record_errors_total",
			Help: "Anomalies whose audit record could not be written."}),
		respErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_behavior_responder_errors_total",
			Help: "Anomalies the responder failed on."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_behavior_evictions_total",
			Help: "Baselines evicted to stay within behavior.max_principals / max_networks."}),
	}
	for _, f := range behavior.FeatureNames() {
		m.anomalies.WithLabelValues(f)
	}
	for _, c := range []prometheus.Collector{m.anomalies, m.dropped, m.recordErr, m.respErr, m.evicted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *behaviorMetrics) hooks() behavior.Hooks {
	return behavior.Hooks{
		Anomaly: func(a *behavior.Anomaly) {
			for _, f := range a.Features {
				m.anomalies.WithLabelValues(f.Name).Inc()
			}
		},
		Dropped:     m.dropped.Inc,
		RecordError: m.recordErr.Inc,
		RespondErr:  m.respErr.Inc,
		Evicted:     m.evicted.Inc,
	}
}

// watch registers the gauge of baselines kept.
func (m *behaviorMetrics) watch(e *behavior.Engine) {
	for kind, f := range map[string]func() float64{
		"principal": func() float64 { return float64(e.Stats().Principals) },
		"network":   func() float64 { return float64(e.Stats().Networks) },
	} {
		_ = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_behavior_baselines",
			Help: "Baselines kept by the behaviour engine.", ConstLabels: prometheus.Labels{"kind": kind}}, f))
	}
}

var (
	_ behavior.Responder = lazyResponder{}
	_ assess.RiskSource  = (*behavior.Engine)(nil)
)
