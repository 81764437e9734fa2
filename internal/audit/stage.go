package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// Stage writes one audit record for every exchange, allowed or denied. It
// must be the first stage of the chain so that it sees every outcome.
//
// It fails closed: while the log is unhealthy, requests are refused with 503
// before any other stage runs, and if a record cannot be written before the
// response has started, the response is replaced by a 503; if it has
// started, the connection is aborted so the response never completes.
//
// While the chain runs, the exchange's writer is wrapped so that, when the
// decision asks for audit level "full", the response body's SHA-256 can be
// recorded; the original writer is put back before the stage returns.
type Stage struct {
	log    *Log
	logger *slog.Logger
	now    func() time.Time

	lastRefusalLog atomic.Int64 // unix nanoseconds; refusals are logged at most once a second
}

// NewStage returns the audit stage writing to l. A nil logger means
// slog.Default().
func NewStage(l *Log, logger *slog.Logger) *Stage {
	if logger == nil {
		logger = slog.Default()
	}
	return &Stage{log: l, logger: logger, now: time.Now}
}

// CodeUnavailable is the public error code of a request refused because the
// audit log cannot record it.
const CodeUnavailable = "audit_unavailable"

func unavailable(cause error) *gateway.Error {
	return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeUnavailable, cause,
		"the audit log is unavailable; requests are refused")
}

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) (err error) {
	if herr := s.log.Healthy(); herr != nil {
		s.logRefusal(ex, herr)
		return unavailable(herr)
	}
	body := s.watchBody(ex)

	defer func() {
		p := recover()
		if p == nil {
			return
		}
		body.restore(ex)
		rec := s.record(ex, body)
		rec.Code = "aborted"
		if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity, as net/http does
			rec.Reason = fmt.Sprintf("stream aborted: %v", p)
		} else {
			rec.Reason = fmt.Sprintf("panic: %v", p)
		}
		if aerr := s.log.Append(s.ctx(ex), rec); aerr != nil {
			s.logger.Error("audit: could not record an aborted exchange", "request_id", ex.ID, "err", aerr)
		}
		panic(p) // net/http aborts the connection
	}()

	err = next(ex)
	body.restore(ex)

	rec := s.record(ex, body)
	if err != nil {
		ge := gateway.AsError(err)
		rec.Code = ge.Code
		rec.Reason = err.Error()
		if rec.Status == 0 {
			rec.Status = ge.Status
		}
	} else if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	if aerr := s.log.Append(s.ctx(ex), rec); aerr != nil {
		if ex.Writer == nil || !ex.Writer.Started() {
			s.logger.Error("audit: response replaced by 503: the exchange could not be recorded",
				"request_id", ex.ID, "err", aerr, "outcome", rec.Reason, "status", rec.Status)
			return unavailable(aerr)
		}
		s.logger.Error("audit: the exchange could not be recorded after its response had started; aborting the connection",
			"request_id", ex.ID, "err", aerr, "status", rec.Status)
		// Fail closed: a response must not complete without its record.
		// http.ErrAbortHandler makes net/http drop the connection without
		// finishing the response; a small unflushed response never reaches
		// the client, and a streamed one ends broken rather than complete.
		panic(http.ErrAbortHandler)
	}
	return err
}

// logRefusal logs a request refused because the log is unhealthy, at most
// once a second so that an outage does not flood the logs.
func (s *Stage) logRefusal(ex *gateway.Exchange, cause error) {
	now := s.now().UnixNano()
	last := s.lastRefusalLog.Load()
	if now-last < int64(time.Second) || !s.lastRefusalLog.CompareAndSwap(last, now) {
		return
	}
	s.logger.Error("audit: requests refused: the audit log is unavailable", "request_id", ex.ID, "err", cause)
}

// ctx is the context for appending: the request's values without its
// cancellation, so that a client hanging up cannot cancel its own record.
func (s *Stage) ctx(ex *gateway.Exchange) context.Context {
	if ex.Request == nil {
		return context.Background()
	}
	return context.WithoutCancel(ex.Request.Context())
}

// record builds the record of ex as it stands. Status is what was sent, 0 if
// nothing was.
func (s *Stage) record(ex *gateway.Exchange, body *bodyHash) *Record {
	now := s.now()
	r := &Record{
		Time:           ex.Start,
		RequestID:      ex.ID,
		Action:         ex.Action,
		Stream:         ex.Stream,
		UpstreamStatus: ex.UpstreamStatus,
		UpstreamMS:     ms(ex.UpstreamTime),
		BytesIn:        int64(len(ex.Body)),
	}
	if r.Time.IsZero() {
		r.Time = now
	} else {
		r.LatencyMS = ms(now.Sub(ex.Start))
	}
	if ex.SourceIP.IsValid() {
		r.SourceIP = ex.SourceIP.String()
	}
	if req := ex.Request; req != nil {
		r.Method = req.Method
		if req.URL != nil {
			r.Path = req.URL.EscapedPath() // never the query
		}
		if ex.Body == nil && req.ContentLength > 0 {
			r.BytesIn = req.ContentLength
		}
	}
	if ex.Body != nil {
		sum := sha256.Sum256(ex.Body)
		r.BodySHA256 = hex.EncodeToString(sum[:])
	}
	if w := ex.Writer; w != nil {
		r.Status = w.Status()
		r.BytesOut = w.BytesWritten()
	}
	if rt := ex.Route; rt != nil || ex.Model != "" || ex.Tool != "" || ex.MCP != nil {
		r.Resource = &Resource{Model: ex.Model, Tool: ex.Tool}
		if m := ex.MCP; m != nil {
			r.Resource.ArgumentsSHA256, r.Resource.MCPSession = m.ArgumentsSHA256, m.Session
		}
		if rt != nil {
			r.Resource.Route, r.Resource.Segment, r.Resource.API = rt.Name, rt.Segment, rt.API
			r.Upstream = SafeURL(rt.Upstream)
		}
	}
	r.Principal = PrincipalOf(ex.Principal)
	if d := ex.Decision; d != nil {
		r.Decision = &Decision{Allow: d.Allow, Reasons: d.Reasons, Obligations: d.Obligations,
			PolicyVersion: d.PolicyVersion}
	}
	if o := ex.Obligations; len(o.Applied) > 0 || o.AuditLevel != "" || o.MaxTokens != 0 || o.RateClass != "" || len(o.Mask) > 0 {
		r.Obligations = &Obligations{Applied: o.Applied, AuditLevel: o.AuditLevel, MaxTokens: o.MaxTokens,
			RateClass: o.RateClass, Mask: o.Mask}
	}
	for _, f := range ex.Findings {
		r.Findings = append(r.Findings, Finding{Guard: f.Guard, Type: f.Type, Class: f.Class, Where: f.Where,
			Start: f.Start, End: f.End, Score: f.Score, Action: f.Action})
	}
	for _, g := range ex.Grants {
		r.Grants = append(r.Grants, g.ID)
	}
	if u := ex.Usage; u.PromptTokens != 0 || u.CompletionTokens != 0 || u.Reported {
		r.Usage = &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Reported: u.Reported}
	}
	if ex.Obligations.AuditLevel == AuditLevelFull {
		r.Full = &Full{RequestHeaders: headerNames(ex.Request)}
		if sum := body.sum(); sum != "" {
			r.Full.ResponseSHA256 = sum
		}
	}
	return r
}

// AuditLevelFull is the obligation's audit level that adds Record.Full.
const AuditLevelFull = "full"

// headerNames returns the request's header names, canonical, sorted.
func headerNames(req *http.Request) []string {
	if req == nil {
		return []string{}
	}
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, http.CanonicalHeaderKey(k))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// bodyHash hashes the response body sent to the client, for audit level
// "full". It sits between the exchange's writer and the client's: it is
// put in place before the rest of the chain runs (the audit level is known
// only after authorize) and hashes once the level is "full", provided no
// byte was sent before.
type bodyHash struct {
	ex      *gateway.Exchange
	orig    *gateway.ResponseWriter
	h       hash.Hash
	missed  bool // bytes were sent before hashing started
	written int64
}

// watchBody wraps ex.Writer; restore puts the original back.
func (s *Stage) watchBody(ex *gateway.Exchange) *bodyHash {
	b := &bodyHash{ex: ex, orig: ex.Writer}
	if ex.Writer != nil {
		ex.Writer = gateway.NewResponseWriter(&hashWriter{b: b})
	}
	return b
}

func (b *bodyHash) restore(ex *gateway.Exchange) {
	if b.orig != nil {
		ex.Writer = b.orig
	}
}

func (b *bodyHash) sum() string {
	if b.h == nil || b.missed {
		return ""
	}
	return hex.EncodeToString(b.h.Sum(nil))
}

func (b *bodyHash) write(p []byte) {
	if b.h == nil && b.ex.Obligations.AuditLevel == AuditLevelFull {
		if b.written > 0 {
			b.missed = true
		}
		b.h = sha256.New()
	}
	if b.h != nil {
		b.h.Write(p)
	}
	b.written += int64(len(p))
}

// hashWriter is the http.ResponseWriter under the exchange's writer while
// the chain runs.
type hashWriter struct{ b *bodyHash }

func (w *hashWriter) Header() http.Header { return w.b.orig.Header() }

func (w *hashWriter) WriteHeader(status int) { w.b.orig.WriteHeader(status) }

func (w *hashWriter) Write(p []byte) (int, error) {
	n, err := w.b.orig.Write(p)
	w.b.write(p[:n])
	return n, err
}

func (w *hashWriter) Flush() { w.b.orig.Flush() }

// Unwrap lets http.ResponseController reach the client's writer.
func (w *hashWriter) Unwrap() http.ResponseWriter { return w.b.orig }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// PrincipalOf is the audited form of p: identifiers only; nil for nil.
func PrincipalOf(p *gateway.Principal) *Principal {
	if p == nil {
		return nil
	}
	return &Principal{Kind: p.Kind, ID: p.ID, OnBehalfOf: p.OnBehalfOf,
		AuthMethod: p.AuthMethod, CredentialID: p.CredentialID, Issuer: p.Issuer, MFA: p.MFA, Workload: p.Workload}
}

// SafeURL drops userinfo, query and fragment from an upstream URL. Routes
// are validated to carry none; this is a second line of defence.
func SafeURL(s string) string {
	if !strings.ContainsAny(s, "@?#") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable upstream URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

var (
	_ gateway.Stage       = (*Stage)(nil)
	_ http.ResponseWriter = (*hashWriter)(nil)
	_ http.Flusher        = (*hashWriter)(nil)
)
