package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Responses configures automated response (docs/respond.md): playbooks that
// turn the behaviour engine's anomalies into sanctions (throttle,
// require_mfa, quarantine), credential revocations, model rollbacks and
// signed webhook alerts. Sanctions are kept in a file so that they survive restarts;
// operators list, add and lift them with `warden sanctions`.
type Responses struct {
	// Enabled turns sanctions on. Default true: the sanctions stage runs
	// and the /v1/warden/sanctions endpoints answer, even with no playbook.
	Enabled *bool `yaml:"enabled"`
	// Path is the sanctions store, a JSON file warden writes. Default "sanctions.json".
	Path string `yaml:"path"`
	// MaxDuration is the longest sanction a playbook or an operator can
	// impose. Default 168h (7 days); at most 720h (30 days).
	MaxDuration Duration `yaml:"max_duration"`
	// Webhooks are the alert receivers playbooks name.
	Webhooks []ResponseWebhook `yaml:"webhooks"`
	// Playbooks are tried in order for each anomaly; the first that matches
	// runs its actions.
	Playbooks []Playbook `yaml:"playbooks"`
}

// ResponseWebhook is one receiver of signed alerts.
type ResponseWebhook struct {
	// Name is what a playbook's webhook action refers to.
	Name string `yaml:"name"`
	// URL receives a POST of JSON. https, or http to a loopback address only.
	URL string `yaml:"url"`
	// SecretEnv or SecretFile names where the HMAC signing secret comes from
	// (exactly one; at least 32 bytes). It is never in the config.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Timeout bounds each delivery attempt. Default 5s, at most 60s.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts is how often a delivery is tried before it is dropped
	// (logged and counted). Default 5, at most 20.
	MaxAttempts int `yaml:"max_attempts"`
	// QueueSize bounds the alerts waiting for delivery; when full, new
	// alerts are dropped (logged and counted), never waited for. Default
	// 1000, at most 100000.
	QueueSize int `yaml:"queue_size"`
}

// Playbook turns matching anomalies into actions.
type Playbook struct {
	// Name identifies the playbook in audit records and alerts.
	Name string `yaml:"name"`
	// Match says which anomalies the playbook acts on; every condition set
	// must hold. An empty match matches every anomaly.
	Match PlaybookMatch `yaml:"match"`
	// Actions run in order (webhooks last, so that they report the rest).
	Actions []PlaybookAction `yaml:"actions"`
}

// PlaybookMatch are the conditions of a playbook.
type PlaybookMatch struct {
	// MinScore: the anomaly's score is at least this (0 to 1).
	MinScore float64 `yaml:"min_score"`
	// MinRisk: the principal's risk after the anomaly is at least this (0 to 1).
	MinRisk float64 `yaml:"min_risk"`
	// Features: at least one of these features drove the anomaly.
	Features []string `yaml:"features"`
	// Kinds: the principal is of one of these kinds (user, service, agent),
	// or "network" for the engine's anomalies about unauthenticated traffic
	// from one network (only webhook and rollback act on those).
	Kinds []string `yaml:"kinds"`
}

// PlaybookAction is one step of a playbook.
type PlaybookAction struct {
	// Type is throttle, require_mfa, quarantine, revoke, webhook or rollback.
	Type string `yaml:"type"`
	// Duration is how long a throttle, require_mfa or quarantine lasts.
	Duration Duration `yaml:"duration"`
	// Class is the limits.classes entry a throttle forces.
	Class string `yaml:"class"`
	// Webhook names the responses.webhooks entry a webhook action alerts.
	Webhook string `yaml:"webhook"`
	// Route names the route a rollback rolls back: one bound to a registry
	// model (routes[].model), whose previous active version it reactivates.
	Route string `yaml:"route"`
}

// Response action types.
const (
	ActionThrottle   = "throttle"
	ActionRequireMFA = "require_mfa"
	ActionQuarantine = "quarantine"
	ActionRevoke     = "revoke"
	ActionWebhook    = "webhook"
	ActionRollback   = "rollback"
)

// Defaults and limits of responses.
const (
	DefaultSanctionsPath        = "sanctions.json"
	DefaultSanctionMaxDuration  = Duration(7 * 24 * time.Hour)
	MaxSanctionMaxDuration      = Duration(30 * 24 * time.Hour)
	MinSanctionDuration         = Duration(time.Second)
	DefaultWebhookTimeout       = Duration(5 * time.Second)
	MaxWebhookTimeout           = Duration(60 * time.Second)
	DefaultWebhookMaxAttempts   = 5
	MaxWebhookMaxAttempts       = 20
	DefaultWebhookQueueSize     = 1000
	MaxWebhookQueueSize         = 100_000
	MinWebhookSecretBytes       = 32
	maxPlaybooks                = 256
	maxPlaybookActions          = 16
	maxPlaybookFeatures         = 64
	maxPlaybookFeatureNameBytes = 64
)

var featureNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// On reports whether sanctions are enabled (the default).
func (r *Responses) On() bool { return r.Enabled == nil || *r.Enabled }

func (c *Config) applyResponsesDefaults() {
	r := &c.Responses
	if r.Path == "" {
		r.Path = DefaultSanctionsPath
	}
	if r.MaxDuration == 0 {
		r.MaxDuration = DefaultSanctionMaxDuration
	}
	for i := range r.Webhooks {
		w := &r.Webhooks[i]
		if w.Timeout == 0 {
			w.Timeout = DefaultWebhookTimeout
		}
		if w.MaxAttempts == 0 {
			w.MaxAttempts = DefaultWebhookMaxAttempts
		}
		if w.QueueSize == 0 {
			w.QueueSize = DefaultWebhookQueueSize
		}
	}
}

func (c *Config) resolveResponsesPaths(abs func(string) string) {
	c.Responses.Path = abs(c.Responses.Path)
	for i := range c.Responses.Webhooks {
		c.Responses.Webhooks[i].SecretFile = abs(c.Responses.Webhooks[i].SecretFile)
	}
}

// validateResponses checks the responses section; like validate, it only
// looks at the document.
func (c *Config) validateResponses(v *validator) {
	const p = "responses"
	r := &c.Responses
	if d := r.MaxDuration; d < MinSanctionDuration || d > MaxSanctionMaxDuration {
		v.add(p+".max_duration", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinSanctionDuration.D(), MaxSanctionMaxDuration.D()))
	}
	if r.Path == "" {
		v.add(p+".path", "required")
	} else {
		c.checkSanctionsPathUnique(v)
	}
	if !r.On() && len(r.Playbooks) > 0 {
		v.add(p+".enabled", "false, but playbooks are configured: remove them or enable responses")
	}

	hooks := map[string]int{}
	for i := range r.Webhooks {
		w := &r.Webhooks[i]
		wp := fmt.Sprintf("%s.webhooks[%d]", p, i)
		switch {
		case w.Name == "":
			v.add(wp+".name", "required: the name a playbook's webhook action refers to")
		case !routeNameRE.MatchString(w.Name):
			v.add(wp+".name", fmt.Sprintf("%q: %s", w.Name, nameRule))
		default:
			if j, dup := hooks[w.Name]; dup {
				v.add(wp+".name", fmt.Sprintf("duplicate webhook name %q (also %s.webhooks[%d])", w.Name, p, j))
			} else {
				hooks[w.Name] = i
			}
		}
		if err := checkWebhookURL(w.URL); err != nil {
			v.add(wp+".url", err.Error())
		}
		if (w.SecretEnv == "") == (w.SecretFile == "") {
			v.add(wp, "exactly one of secret_env or secret_file is required")
		}
		if w.SecretEnv != "" && !envNameRE.MatchString(w.SecretEnv) {
			v.add(wp+".secret_env", fmt.Sprintf("%q is not an environment variable name", w.SecretEnv))
		}
		if w.Timeout <= 0 || w.Timeout > MaxWebhookTimeout {
			v.add(wp+".timeout", fmt.Sprintf("%s: must be greater than 0 and at most %s", w.Timeout.D(), MaxWebhookTimeout.D()))
		}
		if w.MaxAttempts < 1 || w.MaxAttempts > MaxWebhookMaxAttempts {
			v.add(wp+".max_attempts", fmt.Sprintf("%d: must be between 1 and %d", w.MaxAttempts, MaxWebhookMaxAttempts))
		}
		if w.QueueSize < 1 || w.QueueSize > MaxWebhookQueueSize {
			v.add(wp+".queue_size", fmt.Sprintf("%d: must be between 1 and %d", w.QueueSize, MaxWebhookQueueSize))
		}
	}

	classes := map[string]bool{}
	for _, cl := range c.Limits.Classes {
		classes[cl.Name] = true
	}
	if len(r.Playbooks) > maxPlaybooks {
		v.add(p+".playbooks", fmt.Sprintf("%d playbooks: at most %d", len(r.Playbooks), maxPlaybooks))
	}
	names := map[string]int{}
	for i := range r.Playbooks {
		pb := &r.Playbooks[i]
		pp := fmt.Sprintf("%s.playbooks[%d]", p, i)
		switch {
		case pb.Name == "":
			v.add(pp+".name", "required: names the playbook in audit records and alerts")
		case !routeNameRE.MatchString(pb.Name):
			v.add(pp+".name", fmt.Sprintf("%q: %s", pb.Name, nameRule))
		default:
			if j, dup := names[pb.Name]; dup {
				v.add(pp+".name", fmt.Sprintf("duplicate playbook name %q (also %s.playbooks[%d])", pb.Name, p, j))
			} else {
				names[pb.Name] = i
			}
		}
		m := &pb.Match
		for _, t := range []struct {
			field string
			x     float64
		}{{"min_score", m.MinScore}, {"min_risk", m.MinRisk}} {
			if !(t.x >= 0 && t.x <= 1) { // NaN fails too
				v.add(pp+".match."+t.field, fmt.Sprintf("%v: must be between 0 and 1", t.x))
			}
		}
		if len(m.Features) > maxPlaybookFeatures {
			v.add(pp+".match.features", fmt.Sprintf("%d features: at most %d", len(m.Features), maxPlaybookFeatures))
		}
		for j, f := range m.Features {
			if !featureNameRE.MatchString(f) {
				v.add(fmt.Sprintf("%s.match.features[%d]", pp, j),
					fmt.Sprintf("%q: a feature name is 1-64 lower case letters, digits, '_', '.' or '-' (e.g. request_rate)", clip(f, maxPlaybookFeatureNameBytes)))
			}
		}
		for j, k := range m.Kinds {
			if k != "user" && k != "service" && k != "agent" && k != "network" {
				v.add(fmt.Sprintf("%s.match.kinds[%d]", pp, j), fmt.Sprintf("unknown kind %q (user, service, agent, network)", clip(k, 32)))
			}
		}
		if len(pb.Actions) == 0 {
			v.add(pp+".actions", "at least one action is required")
		}
		if len(pb.Actions) > maxPlaybookActions {
			v.add(pp+".actions", fmt.Sprintf("%d actions: at most %d", len(pb.Actions), maxPlaybookActions))
		}
		seen := map[string]int{}
		for j := range pb.Actions {
			c.validatePlaybookAction(v, fmt.Sprintf("%s.actions[%d]", pp, j), &pb.Actions[j], r, hooks, classes, seen, j)
		}
	}
}

func (c *Config) validatePlaybookAction(v *validator, ap string, a *PlaybookAction, r *Responses, hooks map[string]int,
	classes map[string]bool, seen map[string]int, j int) {
	key := a.Type
	switch a.Type {
	case ActionWebhook:
		key += ":" + a.Webhook
	case ActionRollback:
		key += ":" + a.Route
	}
	if first, dup := seen[key]; dup {
		v.add(ap+".type", fmt.Sprintf("duplicate action %s (also actions[%d])", clip(key, 80), first))
	} else {
		seen[key] = j
	}
	timed := false
	switch a.Type {
	case ActionThrottle:
		timed = true
		switch {
		case a.Class == "":
			v.add(ap+".class", "required: the limits.classes entry the throttle forces")
		case !classes[a.Class]:
			v.add(ap+".class", fmt.Sprintf("unknown class %q: define it in limits.classes", clip(a.Class, 64)))
		}
	case ActionRequireMFA:
		timed = true
		if c.Identity.MFA == nil {
			v.add(ap+".type", "require_mfa needs identity.mfa: without it nobody can step up")
		}
	case ActionQuarantine:
		timed = true
	case ActionRevoke:
	case ActionWebhook:
		if a.Webhook == "" {
			v.add(ap+".webhook", "required: the name of a responses.webhooks entry")
		} else if _, ok := hooks[a.Webhook]; !ok {
			v.add(ap+".webhook", fmt.Sprintf("unknown webhook %q: define it in responses.webhooks", clip(a.Webhook, 64)))
		}
	case ActionRollback:
		c.validateRollbackRoute(v, ap, a.Route)
	case "":
		v.add(ap+".type", "required: throttle, require_mfa, quarantine, revoke, webhook or rollback")
		return
	default:
		v.add(ap+".type", fmt.Sprintf("unknown action %q (throttle, require_mfa, quarantine, revoke, webhook, rollback)", clip(a.Type, 32)))
		return
	}
	if timed {
		if d := a.Duration; d < MinSanctionDuration || d > r.MaxDuration {
			v.add(ap+".duration", fmt.Sprintf("%s: must be between %s and responses.max_duration (%s)", d.D(), MinSanctionDuration.D(), r.MaxDuration.D()))
		}
	} else if a.Duration != 0 {
		v.add(ap+".duration", fmt.Sprintf("%s takes no duration", a.Type))
	}
	if a.Class != "" && a.Type != ActionThrottle {
		v.add(ap+".class", "only a throttle takes a class")
	}
	if a.Webhook != "" && a.Type != ActionWebhook {
		v.add(ap+".webhook", "only a webhook action names a webhook")
	}
	if a.Route != "" && a.Type != ActionRollback {
		v.add(ap+".route", "only a rollback names a route")
	}
}

// validateRollbackRoute checks a rollback's route: it exists and is bound
// to a registry model (routes[].model, with models configured).
func (c *Config) validateRollbackRoute(v *validator, ap, route string) {
	if route == "" {
		v.add(ap+".route", "required: the route (bound to a registry model) to roll back")
		return
	}
	for i := range c.Routes {
		if c.Routes[i].Name != route {
			continue
		}
		switch {
		case c.Routes[i].Model == nil:
			v.add(ap+".route", fmt.Sprintf("route %q is not bound to a registry model (routes[%d].model): there is no version to roll back to", clip(route, 64), i))
		case !c.Models.On():
			v.add(ap+".route", "rollback needs the model registry (models.trusted_keys)")
		}
		return
	}
	v.add(ap+".route", fmt.Sprintf("unknown route %q", clip(route, 64)))
}

// checkSanctionsPathUnique reports responses.path naming another data file.
func (c *Config) checkSanctionsPathUnique(v *validator) {
	others := append(c.dataFiles(), dataFile{"policy.grants.path", c.Policy.Grants.Path},
		dataFile{"audit.checkpoint.key_file", c.Audit.Checkpoint.KeyFile})
	for _, f := range others {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(c.Responses.Path) {
			v.add("responses.path", fmt.Sprintf("must not be the same file as %s", f.field))
			return
		}
	}
}

// checkWebhookURL accepts https URLs, and http URLs to loopback hosts only
// (the alert would otherwise cross the network in clear). The URL is never
// echoed: it may carry a token.
func checkWebhookURL(s string) error {
	if s == "" {
		return errors.New("required: where alerts are POSTed, e.g. \"https://soc.example.org/hooks/warden\"")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an https URL (http only to a loopback address)")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials in the URL; alerts are signed with the webhook secret")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	case u.Scheme == "http" && !loopbackHostName(u.Hostname()):
		return errors.New("plain http is allowed to loopback addresses only; use https")
	}
	return nil
}

func loopbackHostName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkResponsesFiles is checkFiles for responses, at Load: the store path
// must not be a directory, and webhook secrets must be readable and long
// enough.
func (c *Config) checkResponsesFiles(v *validator) {
	r := &c.Responses
	if r.Path != "" && !v.failed("responses.path") {
		if fi, err := os.Stat(r.Path); err == nil && fi.IsDir() {
			v.add("responses.path", fmt.Sprintf("%s is a directory; expected a file path", r.Path))
		} else {
			c.checkSanctionsPathUnique(v) // again, with relative paths resolved
		}
	}
	for i := range r.Webhooks {
		w := &r.Webhooks[i]
		wp := fmt.Sprintf("responses.webhooks[%d]", i)
		field := wp + ".secret_env"
		if w.SecretFile != "" {
			field = wp + ".secret_file"
		}
		if v.failed(wp) || v.failed(field) {
			continue
		}
		if _, err := w.Secret(); err != nil {
			v.add(field, strings.TrimPrefix(err.Error(), "config: webhook secret: "))
		}
	}
}

// Secret reads the webhook's signing secret from its environment variable
// or file (trailing newlines trimmed). It must be at least
// MinWebhookSecretBytes long.
func (w *ResponseWebhook) Secret() ([]byte, error) {
	var s, source string
	switch {
	case w.SecretEnv != "" && w.SecretFile != "":
		return nil, errors.New("config: webhook secret: both secret_env and secret_file are set; use one")
	case w.SecretEnv != "":
		source = "env " + w.SecretEnv
		val, ok := os.LookupEnv(w.SecretEnv)
		if !ok {
			return nil, fmt.Errorf("config: webhook secret: %s is not set", source)
		}
		s = val
	case w.SecretFile != "":
		source = "file " + w.SecretFile
		data, err := readFile(w.SecretFile, maxSecretBytes)
		if err != nil {
			return nil, fmt.Errorf("config: webhook secret: %w", err)
		}
		s = string(data)
	default:
		return nil, errors.New("config: webhook secret: neither secret_env nor secret_file is set")
	}
	s = strings.TrimRight(s, "\r\n")
	if len(s) < MinWebhookSecretBytes {
		return nil, fmt.Errorf("config: webhook secret: %s holds %d bytes; at least %d are required (e.g. `openssl rand -hex 32`)",
			source, len(s), MinWebhookSecretBytes)
	}
	return []byte(s), nil
}
