package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/warden-ai/warden/internal/gateway"
)

// Obligation kinds warden knows. Each has a validated shape (a malformed
// value is a policy error); each is carried out by the enforcer the gateway
// registers with Stage.Enforce. An allow whose obligations include a kind
// warden does not know, or one without an enforcer on this gateway, is
// turned into a deny: an obligation nobody enforces is a promise broken
// silently.
const (
	// ObligationMask: object, data class or finding type → "mask" | "hash"
	// | "block". Enforced by the guard stage (internal/inspect,
	// Guards.EnforceMask), registered when guards are enabled.
	ObligationMask = "mask"
	// ObligationMaxTokens: positive integer; caps the generation limit of
	// the request body (EnforceMaxTokens).
	ObligationMaxTokens = "max_tokens"
	// ObligationRequireMFA: boolean; true requires a verified second factor
	// (internal/identity/mfa.RequireMFA).
	ObligationRequireMFA = "require_mfa"
	// ObligationRateClass: string; selects the rate limit class (a name in
	// limits.classes). Enforced by internal/limit (Stage.EnforceRateClass,
	// registered when limits are configured; an unknown class denies).
	ObligationRateClass = "rate_class"
	// ObligationAuditLevel: "standard" | "full"; the audit record's detail
	// (EnforceAuditLevel).
	ObligationAuditLevel = "audit_level"
)

// Mask actions.
const (
	MaskMask  = "mask"
	MaskHash  = "hash"
	MaskBlock = "block"
)

// Audit levels.
const (
	AuditStandard = "standard"
	AuditFull     = "full"
)

// maxTokensLimit bounds the max_tokens obligation: beyond it the value is
// surely a policy bug, and it stays exact in every JSON parser (2^53).
const maxTokensLimit = 1 << 53

// rateClassRE is what a rate class may be: it names a config entry.
var rateClassRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// obligationCheckers validate the shape of each known obligation's value,
// as ast.JSON gives it (numbers are json.Number).
var obligationCheckers = map[string]func(v any) error{
	ObligationMask: func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want an object of data class or finding type to %q, %q or %q, got %s", MaskMask, MaskHash, MaskBlock, jsonType(v))
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if k == "" {
				return errors.New("empty data class or finding type")
			}
			switch m[k] {
			case MaskMask, MaskHash, MaskBlock:
			default:
				return fmt.Errorf("%s: want %q, %q or %q, got %s", k, MaskMask, MaskHash, MaskBlock, jsonValue(m[k]))
			}
		}
		return nil
	},
	ObligationMaxTokens: func(v any) error {
		_, err := tokenLimit(v)
		return err
	},
	ObligationRequireMFA: func(v any) error {
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want a boolean, got %s", jsonType(v))
		}
		return nil
	},
	ObligationRateClass: func(v any) error {
		s, ok := v.(string)
		if !ok || !rateClassRE.MatchString(s) {
			return fmt.Errorf("want a class name (1-63 lower case letters, digits, '_', '.' or '-'), got %s", jsonValue(v))
		}
		return nil
	},
	ObligationAuditLevel: func(v any) error {
		if v != AuditStandard && v != AuditFull {
			return fmt.Errorf("want %q or %q, got %s", AuditStandard, AuditFull, jsonValue(v))
		}
		return nil
	},
}

// KnownObligation reports whether warden knows the obligation kind.
func KnownObligation(kind string) bool { return obligationCheckers[kind] != nil }

// checkObligations validates the value of every known obligation; unknown
// kinds are left to EnforceObligations. Kinds are checked in sorted order
// so that the error is stable.
func checkObligations(obl map[string]any) error {
	if len(obl) == 0 {
		return nil
	}
	kinds := make([]string, 0, len(obl))
	for k := range obl {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		if check := obligationCheckers[k]; check != nil {
			if err := check(obl[k]); err != nil {
				return fmt.Errorf("obligation %s: %w", k, err)
			}
		}
	}
	return nil
}

// tokenLimit reads a max_tokens obligation: a positive integer up to 2^53.
// Rego arithmetic may give it as 256, 256.0 or 2.56e2; all are 256.
func tokenLimit(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("want a positive integer, got %s", jsonType(v))
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i <= 0 || i > maxTokensLimit {
			return 0, fmt.Errorf("want a positive integer up to %d, got %s", int64(maxTokensLimit), n)
		}
		return i, nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok || !r.IsInt() || r.Sign() <= 0 || r.Num().Cmp(big.NewInt(maxTokensLimit)) > 0 {
		return 0, fmt.Errorf("want a positive integer up to %d, got %s", int64(maxTokensLimit), n)
	}
	return r.Num().Int64(), nil
}

// jsonType names the JSON type of a value as ast.JSON gives it.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// jsonValue renders a value briefly for an error message.
func jsonValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return jsonType(v)
	}
	if len(b) > 64 {
		return string(b[:61]) + "..."
	}
	return string(b)
}

// ReasonUnsupportedObligation prefixes the reason recorded for an
// obligation warden cannot enforce: "unsupported obligation: <key>".
const ReasonUnsupportedObligation = "unsupported obligation: "

// EnforceObligations fails closed on obligations warden does not know: if
// d allows and carries any, d becomes a deny whose reasons name each
// unknown key (sorted). It reports whether d was changed. Known kinds
// without an enforcer are denied by the Stage.
func EnforceObligations(d *gateway.Decision) bool {
	if d == nil || !d.Allow || len(d.Obligations) == 0 {
		return false
	}
	var reasons []string
	for k := range d.Obligations {
		if !KnownObligation(k) {
			reasons = append(reasons, ReasonUnsupportedObligation+k)
		}
	}
	if len(reasons) == 0 {
		return false
	}
	slices.Sort(reasons)
	d.Allow = false
	d.Reasons = reasons
	return true
}

// ReasonNotEnabled suffixes ReasonUnsupportedObligation for a known
// obligation that has no enforcer on this gateway.
const ReasonNotEnabled = " (not enabled on this gateway)"

// DenyUnenforced fails closed on known obligations without an enforcer: if
// d allows and carries any obligation for which enforced is false, d
// becomes a deny whose reasons name each such key (sorted), and it reports
// true. Run EnforceObligations first for unknown kinds.
func DenyUnenforced(d *gateway.Decision, enforced func(kind string) bool) bool {
	if d == nil || !d.Allow || len(d.Obligations) == 0 {
		return false
	}
	var reasons []string
	for k := range d.Obligations {
		if !enforced(k) {
			reasons = append(reasons, ReasonUnsupportedObligation+k+ReasonNotEnabled)
		}
	}
	if len(reasons) == 0 {
		return false
	}
	slices.Sort(reasons)
	d.Allow = false
	d.Reasons = reasons
	return true
}

// insertField is the token-limit field EnforceMaxTokens adds to a request
// that has none, by action: the field the OpenAI API documents for it.
// Other actions (embeddings, models, generic HTTP routes) do not generate
// text under a limit warden knows how to set; their bodies are capped only
// where they carry one of the fields.
var insertField = map[string]string{
	"chat.completions": fieldMaxCompletionTokens,
	"completions":      fieldMaxTokens,
	"responses":        fieldMaxOutputTokens,
}

// EnforceMaxTokens is the enforcer of the max_tokens obligation. It caps
// the JSON body's max_tokens, max_completion_tokens and max_output_tokens
// at the obligation's value (see CapMaxTokens), adds the action's field
// when none is present, and keeps ex.Body and the request's Content-Length
// consistent. A request without a body is left as it is; a body that is
// not a JSON object cannot be capped and is refused (403). It records the
// cap in ex.Obligations.MaxTokens and what it did in Applied
// ("max_tokens:256:lowered", ":set", ":kept" or ":no_body").
func EnforceMaxTokens(ex *gateway.Exchange, value any) error {
	limit, err := tokenLimit(value)
	if err != nil {
		return fmt.Errorf("policy: obligation max_tokens: %w", err)
	}
	ex.Obligations.MaxTokens = limit
	how := "no_body"
	if len(ex.Body) > 0 {
		body, what, err := CapMaxTokens(ex.Body, limit, insertField[ex.Action])
		if err != nil {
			return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeDenied,
				fmt.Errorf("policy: obligation max_tokens: %w", err), msgDenied)
		}
		how = what
		if what != "kept" {
			ex.Body = body
			if r := ex.Request; r != nil {
				r.ContentLength = int64(len(body))
				if r.Header != nil && r.Header.Get("Content-Length") != "" {
					r.Header.Set("Content-Length", strconv.Itoa(len(body)))
				}
			}
		}
	}
	ex.Obligations.Applied = append(ex.Obligations.Applied, "max_tokens:"+strconv.FormatInt(limit, 10)+":"+how)
	return nil
}

// Enforcers returns the obligation enforcers this package provides, by
// kind: max_tokens and audit_level. The gateway registers them with
// Stage.Enforce; require_mfa comes from internal/identity/mfa and mask
// from the guard stage (internal/inspect). rate_class has no enforcer until
// the limit stage exists, so it denies.
func Enforcers() map[string]ObligationFunc {
	return map[string]ObligationFunc{
		ObligationMaxTokens:  EnforceMaxTokens,
		ObligationAuditLevel: EnforceAuditLevel,
	}
}

// EnforceAuditLevel is the enforcer of the audit_level obligation: it sets
// ex.Obligations.AuditLevel ("" for standard, "full"), which the audit
// stage records at that detail.
func EnforceAuditLevel(ex *gateway.Exchange, value any) error {
	switch value {
	case AuditStandard:
		ex.Obligations.AuditLevel = ""
	case AuditFull:
		ex.Obligations.AuditLevel = AuditFull
	default:
		return fmt.Errorf("policy: obligation audit_level: want %q or %q, got %s", AuditStandard, AuditFull, jsonValue(value))
	}
	ex.Obligations.Applied = append(ex.Obligations.Applied, "audit_level:"+value.(string))
	return nil
}
