package behavior

import (
	"net/http"

	"github.com/warden-ai/warden/internal/gateway"
)

// Stage observes every finished exchange. It runs right after the audit
// stage, so it sees every outcome — refusals by identify (no principal:
// the source network's baseline), policy, guards and limits included —
// and it observes after the rest of the chain has returned, when the
// status, the response size and the token usage are known. It never
// changes the outcome: the risk it raises is seen by the next request's
// assess stage.
type Stage struct {
	engine *Engine
}

// NewStage returns the observing stage of e.
func NewStage(e *Engine) *Stage { return &Stage{engine: e} }

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	err := next(ex)
	if ex == nil {
		return err
	}
	var o Observation
	ObservationOf(ex, err, &o)
	s.engine.Observe(&o)
	return err
}

// ObservationOf fills o from a finished exchange and the error the chain
// returned: the status is what the client got (or will get: the error's
// status when nothing was sent yet).
func ObservationOf(ex *gateway.Exchange, err error, o *Observation) {
	*o = Observation{At: ex.Start, RequestID: ex.ID, Source: ex.SourceIP, Model: ex.Model, Tool: ex.Tool,
		PromptTokens: ex.Usage.PromptTokens, CompletionTokens: ex.Usage.CompletionTokens}
	if w := ex.Writer; w != nil {
		o.Status, o.BytesOut = w.Status(), w.BytesWritten()
	}
	if o.Status == 0 {
		o.Status = http.StatusOK
		if err != nil {
			o.Status = gateway.AsError(err).Status
		}
	}
	if p := ex.Principal; p != nil {
		o.Kind, o.ID, o.Credential = p.Kind, p.ID, p.CredentialID
		// The client software: its TLS fingerprint, or its User-Agent on
		// a plaintext listener.
		if o.ClientHello = ex.ClientHello(); o.ClientHello == 0 && ex.Request != nil {
			o.UserAgent = ex.Request.Header.Get("User-Agent")
		}
		if len(ex.Body) > 0 {
			o.Prompt = Sketch(PromptText(ex.Body))
		}
	}
}

var _ gateway.Stage = (*Stage)(nil)
