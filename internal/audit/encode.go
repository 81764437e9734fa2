package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends the JSON encoding of r to dst: byte for byte what
// json.Marshal(r) gives (FuzzEncodeRecord holds the two together), about
// four times faster, since every request writes one. Only the policy's
// free-form obligations go through encoding/json.
func appendJSON(dst []byte, r *Record) ([]byte, error) {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, r.Index, 10)
	dst = append(dst, ',')
	return appendBody(dst, r)
}

// appendBody appends the encoding of r after its index field: from the
// "time" field to the closing brace.
func appendBody(dst []byte, r *Record) ([]byte, error) {
	e := encoder{b: dst}
	e.raw(`"time":`)
	if err := e.time(r.Time); err != nil {
		return nil, err
	}
	e.str(`,"request_id":`, r.RequestID)
	if p := r.Principal; p != nil {
		e.str(`,"principal":{"kind":`, p.Kind)
		e.str(`,"id":`, p.ID)
		e.optStr(`,"on_behalf_of":`, p.OnBehalfOf)
		e.str(`,"auth_method":`, p.AuthMethod)
		e.optStr(`,"credential_id":`, p.CredentialID)
		e.optStr(`,"issuer":`, p.Issuer)
		if p.MFA {
			e.raw(`,"mfa":true`)
		}
		e.optStr(`,"workload":`, p.Workload)
		e.raw("}")
	}
	e.optStr(`,"source_ip":`, r.SourceIP)
	e.str(`,"method":`, r.Method)
	e.str(`,"path":`, r.Path)
	e.optStr(`,"action":`, r.Action)
	if rs := r.Resource; rs != nil {
		e.raw(`,"resource":{`)
		first := true
		for _, f := range [...]struct{ k, v string }{{"route", rs.Route}, {"segment", rs.Segment}, {"api", rs.API}, {"model", rs.Model}, {"tool", rs.Tool}, {"arguments_sha256", rs.ArgumentsSHA256}, {"mcp_session", rs.MCPSession}} {
			if f.v == "" {
				continue
			}
			if !first {
				e.raw(",")
			}
			first = false
			e.raw(`"`)
			e.raw(f.k)
			e.raw(`":`)
			e.b = appendJSONString(e.b, f.v)
		}
		e.raw("}")
	}
	if r.Stream {
		e.raw(`,"stream":true`)
	}
	if d := r.Decision; d != nil {
		e.raw(`,"decision":{"allow":`)
		e.b = strconv.AppendBool(e.b, d.Allow)
		e.list(`,"reasons":`, d.Reasons)
		if len(d.Obligations) > 0 {
			e.raw(`,"obligations":`)
			if err := e.value(d.Obligations, 0); err != nil {
				return nil, fmt.Errorf("json: decision obligations: %w", err)
			}
		}
		e.optStr(`,"policy_version":`, d.PolicyVersion)
		e.raw("}")
	}
	if o := r.Obligations; o != nil {
		e.raw(`,"obligations":{`)
		n := len(e.b)
		e.list(`,"applied":`, o.Applied)
		e.optStr(`,"audit_level":`, o.AuditLevel)
		e.optInt(`,"max_tokens":`, o.MaxTokens)
		e.optStr(`,"rate_class":`, o.RateClass)
		if len(o.Mask) > 0 {
			e.raw(`,"mask":{`)
			keys := make([]string, 0, len(o.Mask))
			for k := range o.Mask {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for i, k := range keys {
				if i > 0 {
					e.raw(",")
				}
				e.b = appendJSONString(e.b, k)
				e.raw(":")
				e.b = appendJSONString(e.b, o.Mask[k])
			}
			e.raw("}")
		}
		if len(e.b) > n {
			e.b = slices.Delete(e.b, n, n+1) // the first field's comma
		}
		e.raw("}")
	}
	if len(r.Findings) > 0 {
		e.raw(`,"findings":[`)
		for i := range r.Findings {
			f := &r.Findings[i]
			if i > 0 {
				e.raw(",")
			}
			e.str(`{"guard":`, f.Guard)
			e.str(`,"type":`, f.Type)
			e.optStr(`,"class":`, f.Class)
			e.str(`,"where":`, f.Where)
			e.raw(`,"start":`)
			e.b = strconv.AppendInt(e.b, f.Start, 10)
			e.raw(`,"end":`)
			e.b = strconv.AppendInt(e.b, f.End, 10)
			if f.Score != 0 {
				e.raw(`,"score":`)
				if err := e.float(f.Score); err != nil {
					return nil, err
				}
			}
			e.optStr(`,"action":`, f.Action)
			e.raw("}")
		}
		e.raw("]")
	}
	e.list(`,"grants":`, r.Grants)
	e.raw(`,"status":`)
	e.b = strconv.AppendInt(e.b, int64(r.Status), 10)
	e.optStr(`,"code":`, r.Code)
	e.optStr(`,"reason":`, r.Reason)
	e.optStr(`,"upstream":`, r.Upstream)
	e.optInt(`,"upstream_status":`, int64(r.UpstreamStatus))
	e.raw(`,"latency_ms":`)
	if err := e.float(r.LatencyMS); err != nil {
		return nil, err
	}
	if r.UpstreamMS != 0 {
		e.raw(`,"upstream_ms":`)
		if err := e.float(r.UpstreamMS); err != nil {
			return nil, err
		}
	}
	e.raw(`,"bytes_in":`)
	e.b = strconv.AppendInt(e.b, r.BytesIn, 10)
	e.raw(`,"bytes_out":`)
	e.b = strconv.AppendInt(e.b, r.BytesOut, 10)
	e.optStr(`,"body_sha256":`, r.BodySHA256)
	if u := r.Usage; u != nil {
		e.raw(`,"usage":{"prompt_tokens":`)
		e.b = strconv.AppendInt(e.b, u.PromptTokens, 10)
		e.raw(`,"completion_tokens":`)
		e.b = strconv.AppendInt(e.b, u.CompletionTokens, 10)
		e.raw(`,"reported":`)
		e.b = strconv.AppendBool(e.b, u.Reported)
		e.raw("}")
	}
	if f := r.Full; f != nil {
		e.raw(`,"full":{"request_headers":`)
		if f.RequestHeaders == nil {
			e.raw("null")
		} else {
			e.b = appendJSONList(e.b, f.RequestHeaders)
		}
		e.optStr(`,"response_sha256":`, f.ResponseSHA256)
		e.raw("}")
	}
	e.list(`,"truncated":`, r.Truncated)
	e.raw("}")
	return e.b, nil
}

type encoder struct{ b []byte }

func (e *encoder) raw(s string) { e.b = append(e.b, s...) }

func (e *encoder) str(key, v string) {
	e.raw(key)
	e.b = appendJSONString(e.b, v)
}

func (e *encoder) optStr(key, v string) {
	if v != "" {
		e.str(key, v)
	}
}

func (e *encoder) optInt(key string, v int64) {
	if v != 0 {
		e.raw(key)
		e.b = strconv.AppendInt(e.b, v, 10)
	}
}

func (e *encoder) list(key string, l []string) {
	if len(l) > 0 {
		e.raw(key)
		e.b = appendJSONList(e.b, l)
	}
}

// time encodes t as time.Time.MarshalJSON does (RFC 3339 with nanoseconds).
func (e *encoder) time(t time.Time) error {
	if y := t.Year(); y < 0 || y >= 10000 {
		return errors.New("json: encode record: time: year outside of range [0,9999]")
	}
	b, err := t.MarshalJSON()
	if err != nil {
		return fmt.Errorf("json: encode record: %w", err)
	}
	e.b = append(e.b, b...)
	return nil
}

// float encodes f as encoding/json does a float64.
func (e *encoder) float(f float64) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("json: encode record: unsupported value %v", f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(e.b)
		if n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
	return nil
}

// maxValueDepth bounds the nesting of obligation values encoded by hand;
// deeper values go to encoding/json.
const maxValueDepth = 16

// value encodes a policy's free-form value as encoding/json does: maps with
// sorted keys, the common JSON types by hand, anything else (and deep
// nesting) through json.Marshal.
func (e *encoder) value(v any, depth int) error {
	if depth > maxValueDepth {
		return e.marshal(v)
	}
	switch x := v.(type) {
	case nil:
		e.raw("null")
	case string:
		e.b = appendJSONString(e.b, x)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case float64:
		return e.float(x)
	case int:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case map[string]any:
		if x == nil {
			e.raw("null")
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.raw("{")
		for i, k := range keys {
			if i > 0 {
				e.raw(",")
			}
			e.b = appendJSONString(e.b, k)
			e.raw(":")
			if err := e.value(x[k], depth+1); err != nil {
				return err
			}
		}
		e.raw("}")
	case []any:
		if x == nil {
			e.raw("null")
			return nil
		}
		e.raw("[")
		for i, el := range x {
			if i > 0 {
				e.raw(",")
			}
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
		e.raw("]")
	default:
		return e.marshal(v)
	}
	return nil
}

func (e *encoder) marshal(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.b = append(e.b, b...)
	return nil
}

func appendJSONList(dst []byte, l []string) []byte {
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does by default: control
// characters, '"', '\\', '<', '>' and '&' escaped, invalid UTF-8 replaced
// by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
