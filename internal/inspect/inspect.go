// Package inspect wires the guards (internal/guard) into the gateway: a
// Detect stage that scans the request body (DLP, and prompt injection in
// its prompts and third-party content) before authorize so policy sees its
// data classes, the enforcer of the "mask" obligation that rewrites or
// refuses the body before it is forwarded, and a response inspector that
// masks or ends the upstream's answer under the same policy and blocks any
// canary token.
//
// Its guarantee: a request body that cannot be inspected is refused (4xx),
// a mask obligation that cannot be carried out refuses the exchange, and no
// finding, error or log line carries a matched value — only types and spans.
package inspect

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
)

// Public messages and codes. They name no value and no rule.
const (
	msgBlocked   = "the request contains data that policy does not allow to be sent"
	msgInjection = "the request was refused: a prompt injection was detected"

	// CodeContentBlocked is the error code of a request refused by a
	// "block" mask rule (403).
	CodeContentBlocked = "content_blocked"
	// CodeInjectionDetected is the error code of a request refused by a
	// "block" rule for a prompt-injection finding (403). The answer says
	// only that: no rule, score or span.
	CodeInjectionDetected = "injection_detected"
)

// Guards is the set of guards and the tenant key the stages share.
type Guards struct {
	// Scanner looks for sensitive data in request and response bodies:
	// guard.Multi(dlp.New(), ...) (see server.guardScanners).
	Scanner guard.Scanner
	// Injection scores the texts of a request body with the
	// prompt-injection detector, prompts and third-party content each as
	// what they are (nil: not scored). Request only: model output is not
	// scored.
	Injection *guard.InjectionGuard
	// Canary finds canary tokens in responses (nil: none configured). A
	// canary in a response always blocks it, whatever the mask rules.
	Canary guard.Scanner
	// CanaryToken, when set, is added to the system prompt of chat and
	// Responses requests that do not carry a canary already.
	CanaryToken string
	// Key is the tenant secret for "hash" tokens; without it a hash rule
	// refuses the exchange (fail closed).
	Key []byte
	// MaxOutputBytes bounds the content of a response (0: no limit).
	MaxOutputBytes int64
	// Logger gets details that must not reach the client; nil discards.
	Logger *slog.Logger

	scans sync.Map // *gateway.Exchange → *scan, while Detect's next runs
}

// scan is what Detect found in one request body, kept for the mask
// enforcer so the body is not scanned twice.
type scan struct {
	body     []byte // the body scanned (compared by identity with ex.Body)
	format   guard.Format
	findings []guard.Finding
	first    int // index in ex.Findings of the first of these findings
}

func (g *Guards) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// Detect returns the stage that scans the request body. Place it after the
// body reader and before authorize: it appends what it finds to ex.Findings
// (Where "request"), which policy sees as context.data_classes and
// context.finding_types. A body that cannot be inspected (binary media
// type, invalid UTF-8 or JSON) ends the exchange with the guard's 4xx.
func (g *Guards) Detect() gateway.Stage { return detect{g} }

type detect struct{ g *Guards }

func (d detect) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	g := d.g
	if g.Scanner == nil {
		return fmt.Errorf("inspect: detect stage without a scanner")
	}
	if len(ex.Body) == 0 {
		return next(ex)
	}
	sc, err := g.scanBody(ex)
	if err != nil {
		return err
	}
	if err := g.addCanary(ex, sc); err != nil {
		return err
	}
	g.logInjections(ex, sc.findings)
	ex.Findings = guard.AppendGateway(ex.Findings, guard.WhereRequest, sc.findings)
	g.scans.Store(ex, sc)
	defer g.scans.Delete(ex)
	return next(ex)
}

// scanBody scans ex.Body with the scanner and the injection guard; the
// findings are sorted by offset. first is set to len(ex.Findings).
func (g *Guards) scanBody(ex *gateway.Exchange) (*scan, error) {
	f, err := guard.FormatOf(ex.Request.Header.Get("Content-Type"))
	if err != nil {
		return nil, inputError(err)
	}
	fs, err := guard.ScanBody(g.Scanner, f, ex.Body)
	if err != nil {
		return nil, inputError(err)
	}
	if g.Injection != nil {
		inj, err := g.Injection.ScanRequest(ex.Action, f, ex.Body)
		if err != nil {
			return nil, inputError(err)
		}
		if len(inj) > 0 {
			fs = append(fs, inj...)
			slices.SortStableFunc(fs, func(a, b guard.Finding) int { return cmp.Compare(a.Start, b.Start) })
		}
	}
	return &scan{body: ex.Body, format: f, findings: fs, first: len(ex.Findings)}, nil
}

// addCanary puts the canary token into the system prompt of a chat or
// Responses request, after the body was scanned (warden's own text is
// neither scored nor seen by policy) and only when the body has the shape
// for it and carries no canary yet. The findings are moved with the text.
func (g *Guards) addCanary(ex *gateway.Exchange, sc *scan) error {
	if g.CanaryToken == "" || sc.format != guard.FormatJSON {
		return nil
	}
	if g.Canary != nil && len(g.Canary.Scan(ex.Body)) > 0 {
		return nil // already there (the application placed it)
	}
	body, ins, ok, err := guard.AddSystemText(ex.Action, ex.Body, g.CanaryToken)
	if err != nil {
		return inputError(err)
	}
	if !ok {
		return nil
	}
	ins.Shift(sc.findings)
	setBody(ex, body)
	sc.body = body
	ex.Obligations.Applied = append(ex.Obligations.Applied, "canary")
	return nil
}

// inputError turns a *guard.InputError into the client error it names;
// anything else is an internal fault (500).
func inputError(err error) error {
	var ie *guard.InputError
	if errors.As(err, &ie) {
		return gateway.Errorf(ie.Status, gateway.TypeInvalidRequest, ie.Code, err, "%s", ie.Message)
	}
	return fmt.Errorf("inspect: %w", err)
}

// EnforceMask is the enforcer of the "mask" obligation (register it with
// policy.Stage.Enforce("mask", ...)). The value is an object of data class
// or finding type to "mask", "hash" or "block", as the policy package
// validated it. It records the rules in ex.Obligations.Mask (the response
// is inspected under them too), rewrites ex.Body and its Content-Length,
// sets the Action of the request's findings and records
// "mask:<n>:<masked>" in Applied. A block refuses the exchange with 403; a
// value it cannot read or a hash rule without a key is an internal fault.
func (g *Guards) EnforceMask(ex *gateway.Exchange, value any) error {
	rules, err := maskRules(value)
	if err != nil {
		return fmt.Errorf("inspect: obligation mask: %w", err)
	}
	p, err := guard.NewPolicy(rules, g.Key)
	if err != nil {
		return fmt.Errorf("inspect: obligation mask: %w", err)
	}
	ex.Obligations.Mask = rules
	rewritten := 0
	if len(ex.Body) > 0 {
		sc, err := g.requestScan(ex)
		if err != nil {
			return err
		}
		body, err := guard.RedactBody(p, sc.format, ex.Body, sc.findings)
		for i, f := range sc.findings { // RedactBody decided every action, also on a block
			ex.Findings[sc.first+i].Action = f.Action.String()
			if f.Action == guard.ActionMask || f.Action == guard.ActionHash {
				rewritten++
			}
		}
		var be *guard.BlockedError
		if errors.As(err, &be) {
			g.logger().Info("inspect: request blocked by mask obligation", "request_id", ex.ID,
				"type", be.Finding.Type, "class", be.Finding.Class, "start", be.Finding.Start, "end", be.Finding.End)
			if blockedInjection(sc.findings) {
				return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeInjectionDetected, err, msgInjection)
			}
			return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeContentBlocked, err, msgBlocked)
		}
		if err != nil {
			return fmt.Errorf("inspect: obligation mask: %w", err)
		}
		if rewritten > 0 {
			setBody(ex, body)
		}
	}
	ex.Obligations.Applied = append(ex.Obligations.Applied,
		"mask:"+strconv.Itoa(len(rules))+":"+strconv.Itoa(rewritten))
	return nil
}

// requestScan returns Detect's scan of ex.Body, or scans the body now when
// Detect did not see this body (it was replaced since, or Detect is not in
// the chain); the new findings replace nothing and are appended.
func (g *Guards) requestScan(ex *gateway.Exchange) (*scan, error) {
	if v, ok := g.scans.Load(ex); ok {
		sc := v.(*scan)
		if sameBytes(sc.body, ex.Body) && sc.first+len(sc.findings) <= len(ex.Findings) {
			return sc, nil
		}
	}
	if g.Scanner == nil {
		return nil, fmt.Errorf("inspect: obligation mask without a scanner")
	}
	sc, err := g.scanBody(ex)
	if err != nil {
		return nil, err
	}
	g.logInjections(ex, sc.findings)
	ex.Findings = guard.AppendGateway(ex.Findings, guard.WhereRequest, sc.findings)
	return sc, nil
}

// logInjections logs the prompt-injection findings (type, score, span in
// the body forwarded; never the text).
func (g *Guards) logInjections(ex *gateway.Exchange, fs []guard.Finding) {
	for _, f := range fs {
		if f.Class == guard.ClassInjection {
			g.logger().Info("inspect: prompt injection detected", "request_id", ex.ID, "type", f.Type,
				"score", f.Score, "start", f.Start, "end", f.End)
		}
	}
}

// blockedInjection reports whether a prompt-injection finding is among
// the blocked ones: the refusal then says so (and nothing more).
func blockedInjection(fs []guard.Finding) bool {
	for _, f := range fs {
		if f.Action == guard.ActionBlock && f.Class == guard.ClassInjection {
			return true
		}
	}
	return false
}

// sameBytes reports whether a and b are the same slice (not equal contents:
// an enforcer that rewrote the body made a new one).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// setBody replaces the request body and keeps Content-Length consistent.
func setBody(ex *gateway.Exchange, body []byte) {
	ex.Body = body
	if r := ex.Request; r != nil {
		r.ContentLength = int64(len(body))
		if r.Header != nil && r.Header.Get("Content-Length") != "" {
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
}

// maskRules reads the mask obligation's value: an object whose values are
// strings. policy validated the actions already; guard.NewPolicy checks
// them again.
func maskRules(value any) (map[string]string, error) {
	switch v := value.(type) {
	case map[string]string:
		return v, nil
	case map[string]any:
		rules := make(map[string]string, len(v))
		for k, a := range v {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("rule %q: want a string action, got %T", k, a)
			}
			rules[k] = s
		}
		return rules, nil
	}
	return nil, fmt.Errorf("want an object, got %T", value)
}

// Policy returns the guard policy for an exchange's recorded mask rules;
// nil (flag only) when there are none.
func (g *Guards) Policy(ex *gateway.Exchange) (*guard.Policy, error) {
	if len(ex.Obligations.Mask) == 0 {
		return nil, nil
	}
	return guard.NewPolicy(ex.Obligations.Mask, g.Key)
}

var _ gateway.Stage = detect{}
