package audit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Explain says in plain words what a record tells: who asked for what,
// what the policy decided and why, what the gateway did, and how it ended.
// Every value is escaped so that a hostile request id or model name cannot
// drive a terminal.
func Explain(r *Record) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	q := TerminalSafe

	line("Record %d, request %s, received %s.", r.Index, q(r.RequestID), r.Time.UTC().Format("2006-01-02 15:04:05.000 UTC"))
	if p := r.Principal; p != nil {
		who := fmt.Sprintf("%s %s", q(p.Kind), q(p.ID))
		if p.OnBehalfOf != "" {
			who += " acting for " + q(p.OnBehalfOf)
		}
		how := "proven by " + q(p.AuthMethod)
		if p.CredentialID != "" {
			how += " (credential " + q(p.CredentialID) + ")"
		}
		if p.Issuer != "" {
			how += ", issued by " + q(p.Issuer)
		}
		if p.MFA {
			how += ", with a second factor"
		}
		if p.Workload != "" {
			how += ", from workload " + q(p.Workload)
		}
		line("Caller: %s, %s.", who, how)
	} else {
		line("Caller: not identified (no credential was proven).")
	}
	if r.SourceIP != "" {
		line("From: %s.", q(r.SourceIP))
	}
	what := fmt.Sprintf("%s %s", q(r.Method), q(r.Path))
	if r.Action != "" {
		what += ", action " + q(r.Action)
	}
	if rs := r.Resource; rs != nil {
		var on []string
		if rs.Route != "" {
			on = append(on, "route "+q(rs.Route))
		}
		if rs.Segment != "" {
			on = append(on, "segment "+q(rs.Segment))
		}
		if rs.Model != "" {
			on = append(on, "model "+q(rs.Model))
		}
		if rs.Tool != "" {
			on = append(on, "tool "+q(rs.Tool))
		}
		if len(on) > 0 {
			what += " on " + strings.Join(on, ", ")
		}
	}
	if r.Stream {
		what += ", streamed"
	}
	line("Request: %s.", what)

	switch d := r.Decision; {
	case d == nil:
		line("Decision: none; the request ended before authorization.")
	default:
		verdict := "DENIED"
		if d.Allow {
			verdict = "ALLOWED"
		}
		pv := ""
		if d.PolicyVersion != "" {
			pv = " by policy version " + q(d.PolicyVersion)
		}
		if len(d.Reasons) > 0 {
			rs := make([]string, len(d.Reasons))
			for i, s := range d.Reasons {
				rs[i] = q(s)
			}
			line("Decision: %s%s, because: %s.", verdict, pv, strings.Join(rs, "; "))
		} else {
			line("Decision: %s%s; no reason was given.", verdict, pv)
		}
	}
	if len(r.Grants) > 0 {
		line("Just-in-time grants in force: %s.", joinSafe(r.Grants))
	}
	if o := r.Obligations; o != nil {
		var parts []string
		if o.MaxTokens != 0 {
			parts = append(parts, fmt.Sprintf("cap max_tokens at %d", o.MaxTokens))
		}
		if o.RateClass != "" {
			parts = append(parts, "rate class "+q(o.RateClass))
		}
		keys := make([]string, 0, len(o.Mask))
		for k := range o.Mask {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, q(o.Mask[k])+" "+q(k))
		}
		if o.AuditLevel != "" {
			parts = append(parts, "audit level "+q(o.AuditLevel))
		}
		if len(parts) > 0 {
			line("Obligations: %s.", strings.Join(parts, ", "))
		}
		if len(o.Applied) > 0 {
			line("Carried out: %s.", joinSafe(o.Applied))
		}
	}
	for _, f := range r.Findings {
		act := ""
		if f.Action != "" {
			act = ", " + q(f.Action)
		}
		line("Finding: %s guard found %s (%s) in the %s at bytes %d-%d%s.", q(f.Guard), q(f.Type), q(f.Class), q(f.Where), f.Start, f.End, act)
	}
	outcome := fmt.Sprintf("status %d", r.Status)
	if r.Status == 0 {
		outcome = "nothing was sent (the connection was aborted)"
	}
	if r.Code != "" {
		outcome += ", code " + q(r.Code)
	}
	line("Outcome: %s, after %s ms.", outcome, strconv.FormatFloat(r.LatencyMS, 'f', -1, 64))
	if r.Reason != "" {
		line("Cause (internal): %s.", q(r.Reason))
	}
	if r.Upstream != "" {
		up := "Upstream: " + q(r.Upstream)
		if r.UpstreamStatus != 0 {
			up += fmt.Sprintf(" answered %d after %s ms", r.UpstreamStatus, strconv.FormatFloat(r.UpstreamMS, 'f', -1, 64))
		} else {
			up += " was not reached"
		}
		line("%s.", up)
	}
	line("Bytes: %d in, %d out.", r.BytesIn, r.BytesOut)
	if r.BodySHA256 != "" {
		line("Request body SHA-256: %s.", q(r.BodySHA256))
	}
	if u := r.Usage; u != nil {
		src := "counted by warden"
		if u.Reported {
			src = "reported by the upstream"
		}
		line("Tokens: %d prompt, %d completion (%s).", u.PromptTokens, u.CompletionTokens, src)
	}
	if f := r.Full; f != nil {
		line("Request headers (names only): %s.", joinSafe(f.RequestHeaders))
		if f.ResponseSHA256 != "" {
			line("Response body SHA-256: %s.", q(f.ResponseSHA256))
		}
	}
	if len(r.Truncated) > 0 {
		line("Shortened to fit the record: %s.", joinSafe(r.Truncated))
	}
	return b.String()
}

func joinSafe(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = TerminalSafe(s)
	}
	return strings.Join(out, ", ")
}

// TerminalSafe returns s with non-graphic characters (controls, format
// characters such as bidi overrides, invalid UTF-8) escaped, and "-" for "".
func TerminalSafe(s string) string {
	if s == "" {
		return "-"
	}
	safe := utf8.ValidString(s)
	for _, r := range s {
		if !safe || !unicode.IsGraphic(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
