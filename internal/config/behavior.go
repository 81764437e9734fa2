package config

import (
	"fmt"
	"math"
	"time"
)

// Behavior configures the behaviour engine (docs/behavior.md): online
// baselines per principal, anomalies (audited as behavior.anomaly) and the
// risk score policy sees as context.risk. Off unless enabled.
type Behavior struct {
	// Enabled turns the engine on. Default false: every risk is 0.
	Enabled bool `yaml:"enabled"`
	// HalfLife is how fast a principal's risk decays. Default 1h.
	HalfLife Duration `yaml:"half_life"`
	// Threshold is the anomaly score at which an anomaly is reported;
	// lower is more sensitive. Default 13; between 2 and 100.
	Threshold float64 `yaml:"threshold"`
	// Warmup is how many requests a principal makes before the normal
	// threshold applies (before: only twice the threshold, on the features
	// judged against the population prior). Default 30.
	Warmup int `yaml:"warmup"`
	// Window is the baselines' memory in requests. Default 500.
	Window int `yaml:"window"`
	// Cooldown is the least time between two anomalies of one principal.
	// Default 1m.
	Cooldown Duration `yaml:"cooldown"`
	// MaxPrincipals bounds the baselines kept (about 430 bytes each); past
	// it the least recently seen are evicted. Default 1048576.
	MaxPrincipals int `yaml:"max_principals"`
	// MaxNetworks bounds the baselines of unauthenticated source networks
	// (/24, /48). Default 65536.
	MaxNetworks int `yaml:"max_networks"`
	// IdleTTL evicts baselines not seen for this long. Default 720h.
	IdleTTL Duration `yaml:"idle_ttl"`
}

// Defaults and bounds of behavior.
const (
	DefaultBehaviorHalfLife      = Duration(time.Hour)
	DefaultBehaviorThreshold     = 13
	DefaultBehaviorWarmup        = 30
	DefaultBehaviorWindow        = 500
	DefaultBehaviorCooldown      = Duration(time.Minute)
	DefaultBehaviorMaxPrincipals = 1 << 20
	DefaultBehaviorMaxNetworks   = 1 << 16
	DefaultBehaviorIdleTTL       = Duration(720 * time.Hour)
	maxBehaviorStates            = 1 << 26
)

func (c *Config) applyBehaviorDefaults() {
	b := &c.Behavior
	if b.HalfLife == 0 {
		b.HalfLife = DefaultBehaviorHalfLife
	}
	if b.Threshold == 0 {
		b.Threshold = DefaultBehaviorThreshold
	}
	if b.Warmup == 0 {
		b.Warmup = DefaultBehaviorWarmup
	}
	if b.Window == 0 {
		b.Window = DefaultBehaviorWindow
	}
	if b.Cooldown == 0 {
		b.Cooldown = DefaultBehaviorCooldown
	}
	if b.MaxPrincipals == 0 {
		b.MaxPrincipals = DefaultBehaviorMaxPrincipals
	}
	if b.MaxNetworks == 0 {
		b.MaxNetworks = DefaultBehaviorMaxNetworks
	}
	if b.IdleTTL == 0 {
		b.IdleTTL = DefaultBehaviorIdleTTL
	}
}

// validateBehavior checks the behavior section; like validate, it only
// looks at the document.
func (c *Config) validateBehavior(v *validator) {
	const p = "behavior"
	b := &c.Behavior
	if d := b.HalfLife; d < Duration(time.Second) || d > Duration(30*24*time.Hour) {
		v.add(p+".half_life", fmt.Sprintf("%s: must be between 1s and 720h", d.D()))
	}
	if t := b.Threshold; math.IsNaN(t) || t < 2 || t > 100 {
		v.add(p+".threshold", fmt.Sprintf("%v: must be between 2 and 100 (default %d)", t, DefaultBehaviorThreshold))
	}
	if b.Warmup < 1 || b.Warmup > 10000 {
		v.add(p+".warmup", fmt.Sprintf("%d: must be between 1 and 10000 requests", b.Warmup))
	}
	if b.Window < 10 || b.Window > 100000 {
		v.add(p+".window", fmt.Sprintf("%d: must be between 10 and 100000 requests", b.Window))
	}
	if d := b.Cooldown; d < 0 || d > Duration(24*time.Hour) {
		v.add(p+".cooldown", fmt.Sprintf("%s: must be between 0s and 24h", d.D()))
	}
	if b.MaxPrincipals < 1 || b.MaxPrincipals > maxBehaviorStates {
		v.add(p+".max_principals", fmt.Sprintf("%d: must be between 1 and %d", b.MaxPrincipals, maxBehaviorStates))
	}
	if b.MaxNetworks < 1 || b.MaxNetworks > maxBehaviorStates {
		v.add(p+".max_networks", fmt.Sprintf("%d: must be between 1 and %d", b.MaxNetworks, maxBehaviorStates))
	}
	if d := b.IdleTTL; d < Duration(time.Minute) {
		v.add(p+".idle_ttl", fmt.Sprintf("%s: must be at least 1m", d.D()))
	}
}
