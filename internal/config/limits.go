package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Limits configures rate limits and token budgets (docs/limits.md). With
// no classes, nothing is limited and a policy's rate_class obligation
// denies (warden cannot carry it out).
type Limits struct {
	// Backend keeps the limits' state: "memory" (default: in process,
	// per replica) or "redis" (shared by every replica; needs redis).
	Backend string `yaml:"backend"`
	// FailureMode is what happens when the backend cannot answer:
	// "closed" (default: 503, nothing is forwarded) or "open" (the
	// exchange goes on unlimited; counted in
	// warden_limit_backend_errors_total and logged).
	FailureMode string `yaml:"failure_mode"`
	// MaxKeys bounds the memory backend's live keys (default 1048576);
	// past it new principals fail like an unavailable backend.
	MaxKeys int `yaml:"max_keys"`
	// Redis is the shared backend; required when backend is redis.
	Redis *LimitsRedis `yaml:"redis"`
	// Defaults name the class of each principal kind when the policy's
	// rate_class obligation names none. A kind without one is not limited.
	Defaults LimitDefaults `yaml:"defaults"`
	// Classes are the named sets of limits.
	Classes []LimitClass `yaml:"classes"`
}

// LimitsRedis is the Redis server (or cluster) of the redis backend.
type LimitsRedis struct {
	// Addresses are host:port; one for a server, several for a cluster.
	Addresses []string `yaml:"addresses"`
	Username  string   `yaml:"username"`
	// PasswordEnv or PasswordFile names where the password comes from
	// (at most one; neither: no password). It is never in the config.
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// DB is the database number (single server only). Default 0.
	DB int `yaml:"db"`
	// KeyPrefix is put before every key. Default "warden:limit:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds dialing and each command. Default 250ms, at most 10s.
	Timeout Duration `yaml:"timeout"`
}

// LimitDefaults name the default class of each principal kind.
type LimitDefaults struct {
	User    string `yaml:"user"`
	Service string `yaml:"service"`
	Agent   string `yaml:"agent"`
}

// LimitClass is a named set of limits, kept per principal.
type LimitClass struct {
	// Name is what defaults and the policy's rate_class obligation refer
	// to: 1-63 lower case letters, digits, '_', '.' or '-'.
	Name string `yaml:"name"`
	// Requests is the request rate limit; absent: none.
	Requests *LimitRequests `yaml:"requests"`
	// Tokens are token budgets per calendar window (UTC); 0 or absent: none.
	Tokens LimitTokens `yaml:"tokens"`
	// By splits every limit of the class further: "route" (one per
	// route), "model" (one per model).
	By []string `yaml:"by"`
}

// LimitRequests allows Limit requests per Per on average (GCRA), at most
// Burst at once.
type LimitRequests struct {
	Limit int64    `yaml:"limit"` // required, positive
	Per   Duration `yaml:"per"`   // required: 1ms to 744h (31 days)
	Burst int64    `yaml:"burst"` // default Limit
}

// LimitTokens are token budgets (prompt plus completion tokens) per window.
type LimitTokens struct {
	Minute int64 `yaml:"minute"`
	Hour   int64 `yaml:"hour"`
	Day    int64 `yaml:"day"`
	Month  int64 `yaml:"month"`
}

// Limit backends and failure modes.
const (
	LimitsBackendMemory = "memory"
	LimitsBackendRedis  = "redis"
	LimitsFailClosed    = "closed"
	LimitsFailOpen      = "open"
)

// Defaults and bounds of limits.
const (
	DefaultLimitsMaxKeys      = 1 << 20
	MaxLimitsMaxKeys          = 1 << 28
	DefaultLimitsRedisPrefix  = "warden:limit:"
	DefaultLimitsRedisTimeout = Duration(250 * time.Millisecond)
	MaxLimitsRedisTimeout     = Duration(10 * time.Second)
	MinLimitsPer              = Duration(time.Millisecond)
	MaxLimitsPer              = Duration(744 * time.Hour)
	maxLimitsBurst            = 1 << 30
	maxLimitsTokens           = 1 << 50
)

// On reports whether any limit is configured.
func (l *Limits) On() bool { return len(l.Classes) > 0 }

// Open reports whether the failure mode is open.
func (l *Limits) Open() bool { return l.FailureMode == LimitsFailOpen }

// ByKind returns the default class names by principal kind (only those set).
func (d LimitDefaults) ByKind() map[string]string {
	m := map[string]string{}
	for kind, name := range map[string]string{"user": d.User, "service": d.Service, "agent": d.Agent} {
		if name != "" {
			m[kind] = name
		}
	}
	return m
}

func (c *Config) applyLimitsDefaults() {
	l := &c.Limits
	if l.Backend == "" {
		l.Backend = LimitsBackendMemory
	}
	if l.FailureMode == "" {
		l.FailureMode = LimitsFailClosed
	}
	if l.MaxKeys == 0 {
		l.MaxKeys = DefaultLimitsMaxKeys
	}
	if r := l.Redis; r != nil {
		if r.KeyPrefix == "" {
			r.KeyPrefix = DefaultLimitsRedisPrefix
		}
		if r.Timeout == 0 {
			r.Timeout = DefaultLimitsRedisTimeout
		}
	}
	for i := range l.Classes {
		if r := l.Classes[i].Requests; r != nil && r.Burst == 0 {
			r.Burst = r.Limit
		}
	}
}

func (c *Config) resolveLimitsPaths(abs func(string) string) {
	if r := c.Limits.Redis; r != nil {
		r.PasswordFile = abs(r.PasswordFile)
	}
}

// validateLimits checks the limits section; like validate, it only looks
// at the document.
func (c *Config) validateLimits(v *validator) {
	const p = "limits"
	l := &c.Limits
	switch l.Backend {
	case LimitsBackendMemory:
		if l.Redis != nil {
			v.add(p+".redis", "set, but backend is memory: set backend: redis to use it")
		}
	case LimitsBackendRedis:
		if l.Redis == nil {
			v.add(p+".backend", "redis needs a limits.redis section with addresses")
		}
	default:
		v.add(p+".backend", fmt.Sprintf("unknown backend %q (memory, redis)", l.Backend))
	}
	if l.FailureMode != LimitsFailClosed && l.FailureMode != LimitsFailOpen {
		v.add(p+".failure_mode", fmt.Sprintf("unknown failure mode %q (closed, open)", l.FailureMode))
	}
	if l.MaxKeys < 1 || l.MaxKeys > MaxLimitsMaxKeys {
		v.add(p+".max_keys", fmt.Sprintf("%d: must be between 1 and %d", l.MaxKeys, MaxLimitsMaxKeys))
	}
	if r := l.Redis; r != nil {
		validateLimitsRedis(v, p+".redis", r)
	}

	names := map[string]int{}
	for i := range l.Classes {
		cl := &l.Classes[i]
		cp := fmt.Sprintf("%s.classes[%d]", p, i)
		switch {
		case cl.Name == "":
			v.add(cp+".name", "required: the name defaults and the rate_class obligation refer to")
		case !routeNameRE.MatchString(cl.Name):
			v.add(cp+".name", fmt.Sprintf("%q: %s", cl.Name, nameRule))
		default:
			if j, dup := names[cl.Name]; dup {
				v.add(cp+".name", fmt.Sprintf("duplicate class name %q (also limits.classes[%d])", cl.Name, j))
			} else {
				names[cl.Name] = i
			}
		}
		t := cl.Tokens
		if cl.Requests == nil && t.Minute == 0 && t.Hour == 0 && t.Day == 0 && t.Month == 0 {
			v.add(cp, "limits nothing: set requests or tokens")
		}
		if r := cl.Requests; r != nil {
			rp := cp + ".requests"
			if r.Limit < 1 || r.Limit > maxLimitsBurst {
				v.add(rp+".limit", fmt.Sprintf("%d: must be between 1 and %d", r.Limit, maxLimitsBurst))
			}
			if r.Per < MinLimitsPer || r.Per > MaxLimitsPer {
				v.add(rp+".per", fmt.Sprintf("%s: must be between %s and %s, like \"1m\" or \"24h\"", r.Per.D(), MinLimitsPer.D(), MaxLimitsPer.D()))
			} else if r.Limit >= 1 && r.Per.D()/time.Duration(r.Limit) < time.Microsecond {
				v.add(rp+".limit", fmt.Sprintf("%d per %s is more than one a microsecond", r.Limit, r.Per.D()))
			}
			if r.Burst < 1 || r.Burst > maxLimitsBurst {
				v.add(rp+".burst", fmt.Sprintf("%d: must be between 1 and %d (default: limit)", r.Burst, maxLimitsBurst))
			}
		}
		for _, w := range []struct {
			name string
			n    int64
		}{{"minute", t.Minute}, {"hour", t.Hour}, {"day", t.Day}, {"month", t.Month}} {
			if w.n < 0 || w.n > maxLimitsTokens {
				v.add(cp+".tokens."+w.name, fmt.Sprintf("%d: must be between 0 (no budget) and %d", w.n, int64(maxLimitsTokens)))
			}
		}
		seen := map[string]bool{}
		for j, b := range cl.By {
			bp := fmt.Sprintf("%s.by[%d]", cp, j)
			switch {
			case b != "route" && b != "model":
				v.add(bp, fmt.Sprintf("unknown dimension %q (route, model)", b))
			case seen[b]:
				v.add(bp, fmt.Sprintf("duplicate dimension %q", b))
			}
			seen[b] = true
		}
	}
	known := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	for _, d := range []struct{ field, name string }{
		{"user", l.Defaults.User}, {"service", l.Defaults.Service}, {"agent", l.Defaults.Agent},
	} {
		if d.name == "" {
			continue
		}
		if _, ok := names[d.name]; !ok {
			list := strings.Join(known, ", ")
			if list == "" {
				list = "none defined"
			}
			v.add(p+".defaults."+d.field, fmt.Sprintf("unknown class %q (classes: %s)", d.name, list))
		}
	}
}

func validateLimitsRedis(v *validator, p string, r *LimitsRedis) {
	if len(r.Addresses) == 0 {
		v.add(p+".addresses", "required: at least one host:port, e.g. \"127.0.0.1:6379\"")
	}
	for i, a := range r.Addresses {
		hp, err := parseHostPort(a)
		switch {
		case err != nil:
			v.add(fmt.Sprintf("%s.addresses[%d]", p, i), fmt.Sprintf("%q: %v", a, err))
		case hp.host == "" || hp.port == 0:
			v.add(fmt.Sprintf("%s.addresses[%d]", p, i), fmt.Sprintf("%q: want host:port with a host and a port", a))
		}
	}
	if r.PasswordEnv != "" && r.PasswordFile != "" {
		v.add(p+".password_env", "set at most one of password_env and password_file")
	}
	if r.PasswordEnv != "" && !envNameRE.MatchString(r.PasswordEnv) {
		v.add(p+".password_env", fmt.Sprintf("%q is not an environment variable name", r.PasswordEnv))
	}
	if r.DB < 0 || r.DB > 15 {
		v.add(p+".db", fmt.Sprintf("%d: must be between 0 and 15", r.DB))
	} else if r.DB != 0 && len(r.Addresses) > 1 {
		v.add(p+".db", "a Redis Cluster (several addresses) has only database 0")
	}
	if strings.ContainsAny(r.KeyPrefix, "{} \t\r\n") {
		v.add(p+".key_prefix", "must not contain braces or whitespace")
	}
	if r.Timeout <= 0 || r.Timeout > MaxLimitsRedisTimeout {
		v.add(p+".timeout", fmt.Sprintf("%s: must be greater than 0 and at most %s", r.Timeout.D(), MaxLimitsRedisTimeout.D()))
	}
}

// Password reads the Redis password from its environment variable or
// file; "" when neither is set. A named variable that is unset or empty,
// or a file that is unreadable or empty, is an error.
func (r *LimitsRedis) Password() (string, error) {
	switch {
	case r.PasswordEnv != "":
		s := os.Getenv(r.PasswordEnv)
		if s == "" {
			return "", fmt.Errorf("config: limits.redis.password_env: %s is not set or empty", r.PasswordEnv)
		}
		return s, nil
	case r.PasswordFile != "":
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("config: limits.redis.password_file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", errors.New("config: limits.redis.password_file: empty")
		}
		return s, nil
	}
	return "", nil
}
