package assess

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// mtlsMethod is the Principal.AuthMethod of principals proven by a client
// certificate (identity/mtls.Method; not imported, stages meet in gateway).
const mtlsMethod = "mtls"

// workloadRule is one context.posture.workloads entry, prepared.
type workloadRule struct {
	exact  string         // the SPIFFE ID to match exactly, or ""
	prefix string         // "spiffe://td/path/" to match every ID below, or ""
	attrs  map[string]any // JSON-normalised attributes; never handed out, only copies
}

// newWorkloadRules prepares the workload rules, checking them as config
// validation does (they may come from elsewhere than Load).
func newWorkloadRules(ws []config.WorkloadPosture) ([]workloadRule, error) {
	rules := make([]workloadRule, 0, len(ws))
	for i, w := range ws {
		if err := config.CheckSPIFFEPattern(w.SPIFFEID); err != nil {
			return nil, fmt.Errorf("assess: workloads[%d].spiffe_id: %w", i, err)
		}
		if len(w.Posture) == 0 {
			return nil, fmt.Errorf("assess: workloads[%d].posture: empty", i)
		}
		b, err := w.Posture.JSON()
		if err != nil {
			return nil, fmt.Errorf("assess: workloads[%d].posture: %w", i, err)
		}
		var attrs map[string]any
		if err := json.Unmarshal(b, &attrs); err != nil {
			return nil, fmt.Errorf("assess: workloads[%d].posture: %w", i, err)
		}
		r := workloadRule{attrs: attrs}
		if base, ok := strings.CutSuffix(w.SPIFFEID, "/*"); ok {
			r.prefix = base + "/"
		} else {
			r.exact = w.SPIFFEID
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// workloadID is the SPIFFE ID whose posture applies to p: the principal's
// own when it was proven by mTLS, else the mTLS peer's when a bearer
// credential named the principal; "" if there is none or it is not a
// valid SPIFFE ID (a certificate accepted by its common name).
func workloadID(p *gateway.Principal) string {
	id := p.Workload
	if id == "" && p.AuthMethod == mtlsMethod {
		id = p.ID
	}
	if id == "" {
		return ""
	}
	if _, err := spiffeid.FromString(id); err != nil {
		return ""
	}
	return id
}

// workloadPosture returns a fresh copy of the attributes of the first rule
// matching id, with "spiffe_id" set to id; nil if none matches.
func workloadPosture(rules []workloadRule, id string) map[string]any {
	if id == "" {
		return nil
	}
	for i := range rules {
		r := &rules[i]
		if r.exact == id || r.prefix != "" && len(id) > len(r.prefix) && strings.HasPrefix(id, r.prefix) {
			m := copyValue(r.attrs).(map[string]any)
			m[config.PostureSPIFFEIDKey] = id
			return m
		}
	}
	return nil
}

// copyValue deep-copies a JSON-decoded value, so that no request can see
// (or change) another's posture.
func copyValue(x any) any {
	switch t := x.(type) {
	case map[string]any:
		m := make(map[string]any, len(t)+1)
		for k, v := range t {
			m[k] = copyValue(v)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, v := range t {
			s[i] = copyValue(v)
		}
		return s
	default:
		return x // string, float64, bool, nil: immutable
	}
}
