package respond

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the responder's Prometheus collectors; label values come
// from the config (playbook and webhook names) or fixed sets.
type metrics struct {
	anomalies *prometheus.CounterVec
	actions   *prometheus.CounterVec
	webhook   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_respond_anomalies_total",
			Help: "Anomalies reported to the responder, by the playbook that matched (none: no playbook; invalid: refused).",
		}, []string{"playbook"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_respond_actions_total",
			Help: "Playbook actions by type and outcome (applied, unchanged, revoked, skipped, failed, queued, dropped).",
		}, []string{"type", "outcome"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_respond_webhook_total",
			Help: "Webhook alert deliveries by webhook and outcome (delivered, retried, failed, dropped).",
		}, []string{"webhook", "outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.anomalies, m.actions, m.webhook} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("respond: metrics: %w", err)
			}
		}
	}
	return m, nil
}
