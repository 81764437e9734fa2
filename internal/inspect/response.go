package inspect

import (
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/canary"
)

// CodeOutputTooLarge is the error code of a non-streamed response whose
// content exceeds guards.max_output_bytes (502).
const CodeOutputTooLarge = "output_too_large"

// Responses returns the inspector of upstream responses (set it as the
// proxy's ResponseInspector). Under the exchange's mask rules it masks or
// hashes what the guards find in a JSON or text body and in an SSE stream
// as it streams; a block or an oversized output refuses a whole body (403,
// 502) and ends a stream with a well-formed "event: error". What it found
// is appended to ex.Findings (Where "response") once the body was sent.
func (g *Guards) Responses() gateway.ResponseInspector { return responses{g} }

type responses struct{ g *Guards }

func (r responses) InspectResponse(ex *gateway.Exchange, res *http.Response) (func(), error) {
	g := r.g
	if g.Scanner == nil {
		return nil, errors.New("inspect: response inspector without a scanner")
	}
	p, err := g.responsePolicy(ex)
	if err != nil {
		return nil, fmt.Errorf("inspect: response policy: %w", err)
	}
	sc := g.Scanner
	if g.Canary != nil {
		sc = guard.Multi(g.Scanner, g.Canary)
	}
	in, err := guard.InspectResponse(res, guard.ResponseOptions{
		Scanner: sc, Policy: p, RequestID: ex.ID, MaxContentBytes: g.MaxOutputBytes,
	})
	if err != nil {
		var be *guard.BlockedError
		switch {
		case errors.As(err, &be):
			g.logger().Info("inspect: response blocked by mask obligation", "request_id", ex.ID,
				"type", be.Finding.Type, "class", be.Finding.Class)
			ex.Findings = append(ex.Findings, be.Finding.Gateway(guard.WhereResponse))
			return nil, gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeContentBlocked, err,
				"the response contains data that policy does not allow to be returned")
		case errors.Is(err, guard.ErrOutputTooLarge):
			return nil, gateway.Errorf(http.StatusBadGateway, gateway.TypeUpstream, CodeOutputTooLarge, err,
				"the upstream response exceeds the output limit")
		}
		return nil, gateway.Errorf(http.StatusBadGateway, gateway.TypeUpstream, "upstream_uninspectable", err,
			"the upstream response could not be inspected")
	}
	return func() {
		ex.Findings = guard.AppendGateway(ex.Findings, guard.WhereResponse, in.Findings())
		if err := in.Err(); err != nil {
			g.logger().Info("inspect: response stream ended early", "request_id", ex.ID, "cause", err.Error())
		}
	}, nil
}

// responsePolicy is the exchange's mask rules plus, when canaries are
// configured, a block rule for a canary leak that no policy rule can
// weaken (a type rule beats a class rule, and this one is set last).
func (g *Guards) responsePolicy(ex *gateway.Exchange) (*guard.Policy, error) {
	if g.Canary == nil {
		return g.Policy(ex)
	}
	rules := maps.Clone(ex.Obligations.Mask)
	if rules == nil {
		rules = map[string]string{}
	}
	rules[canary.TypeLeak] = "block"
	return guard.NewPolicy(rules, g.Key)
}

var _ gateway.ResponseInspector = responses{}
