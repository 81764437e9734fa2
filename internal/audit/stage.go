package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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
// response has started, the response is replaced by a 503.
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

	defer func() {
		p := recover()
		if p == nil {
			return
		}
		rec := s.record(ex)
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

	rec := s.record(ex)
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
		s.logger.Error("audit: the exchange could not be recorded after its response had started",
			"request_id", ex.ID, "err", aerr, "status", rec.Status)
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
func (s *Stage) record(ex *gateway.Exchange) *Record {
	now := s.now()
	r := &Record{
		Time:           ex.Start,
		RequestID:      ex.ID,
		Action:         ex.Action,
		Model:          ex.Model,
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
	if rt := ex.Route; rt != nil {
		r.Route = rt.Name
		r.Segment = rt.Segment
		r.Upstream = safeURL(rt.Upstream)
	}
	if p := ex.Principal; p != nil {
		r.Principal = &Principal{Kind: p.Kind, ID: p.ID, OnBehalfOf: p.OnBehalfOf,
			AuthMethod: p.AuthMethod, CredentialID: p.CredentialID}
	}
	if d := ex.Decision; d != nil {
		r.Decision = &Decision{Allow: d.Allow, Reasons: d.Reasons, Obligations: d.Obligations,
			PolicyVersion: d.PolicyVersion}
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// safeURL drops userinfo, query and fragment from an upstream URL. Routes
// are validated to carry none; this is a second line of defence.
func safeURL(s string) string {
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

var _ gateway.Stage = (*Stage)(nil)
