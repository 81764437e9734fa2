// Package telemetry exposes warden's Prometheus metrics on a registry of its
// own (no global state), with label values drawn from bounded sets so an
// attacker cannot blow up metric cardinality.
package telemetry

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-ai/warden/internal/gateway"
)

// Metrics holds warden's collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	upstream *prometheus.HistogramVec

	policyReloads *prometheus.CounterVec
	policyInfo    *prometheus.GaugeVec
	policyMu      sync.Mutex // orders policy version changes
	policyVersion string
}

// NewMetrics registers warden's collectors, plus the Go runtime and process
// collectors, on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_requests_total",
		Help: "Requests handled, by route, decision (allow, deny, none) and HTTP status.",
	}, []string{"route", "decision", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_request_duration_seconds",
		Help:    "Time from receiving a request to the end of its response, by route and decision.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "decision"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_upstream_header_duration_seconds",
		Help:    "Time from forwarding a request to receiving the upstream's response headers, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	m.policyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_policy_reloads_total",
		Help: "Policy reloads by result: success (new policy in force) or failure (it did not compile or its tests failed; the previous policy stays).",
	}, []string{"result"})
	m.policyInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "warden_policy_info",
		Help: "The policy in force: 1 for its version (sha256 of the policy files), one series at a time.",
	}, []string{"version"})
	m.policyReloads.WithLabelValues("success")
	m.policyReloads.WithLabelValues("failure")
	m.reg.MustRegister(m.policyReloads, m.policyInfo)
	m.reg.MustRegister(m.requests, m.latency, m.upstream,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for components that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveExchange implements gateway.Observer.
func (m *Metrics) ObserveExchange(ex *gateway.Exchange, status int, elapsed time.Duration) {
	route := "none"
	if ex.Route != nil {
		route = ex.Route.Name // from config: bounded
	}
	decision := "none"
	if ex.Decision != nil {
		decision = "deny"
		if ex.Decision.Allow {
			decision = "allow"
		}
	}
	m.requests.WithLabelValues(route, decision, statusLabel(status)).Inc()
	m.latency.WithLabelValues(route, decision).Observe(elapsed.Seconds())
	if ex.UpstreamStatus != 0 {
		m.upstream.WithLabelValues(route).Observe(ex.UpstreamTime.Seconds())
	}
}

// PolicyMemo exports the decision memo's counts (policy.Stage.MemoStats)
// as warden_policy_memo_total{result="hit"|"miss"}. Call it once.
func (m *Metrics) PolicyMemo(stats func() (hits, misses uint64)) {
	for _, result := range []string{"hit", "miss"} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "warden_policy_memo_total",
			Help:        "Policy decisions by memo result: hit (the decision of an earlier request with the same policy input) or miss (evaluated). Decisions made with the memo off are not counted.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 {
			h, mi := stats()
			if result == "hit" {
				return float64(h)
			}
			return float64(mi)
		}))
	}
}

// PolicyVersion records the version of the policy in force; the previous
// version's series is removed, so that warden_policy_info has one series.
func (m *Metrics) PolicyVersion(version string) {
	m.policyMu.Lock()
	defer m.policyMu.Unlock()
	if version == m.policyVersion {
		return
	}
	if m.policyVersion != "" {
		m.policyInfo.DeleteLabelValues(m.policyVersion)
	}
	m.policyVersion = version
	m.policyInfo.WithLabelValues(version).Set(1)
}

// PolicyReloaded counts a policy reload attempt and, on success, records
// the new version.
func (m *Metrics) PolicyReloaded(ok bool, version string) {
	if !ok {
		m.policyReloads.WithLabelValues("failure").Inc()
		return
	}
	m.policyReloads.WithLabelValues("success").Inc()
	m.PolicyVersion(version)
}

// statusLabel keeps the status label within the valid HTTP range.
func statusLabel(s int) string {
	if s < 100 || s > 599 {
		return "other"
	}
	return strconv.Itoa(s)
}

var _ gateway.Observer = (*Metrics)(nil)
