package registry

import (
	"errors"
	"net/http"

	"github.com/warden-ai/warden/internal/gateway"
)

// Headers the gate sets on the upstream request of a gated route, so the
// upstream (and its logs) can tell which verified version it serves. Any
// client-sent value is replaced.
const (
	HeaderModelVersion = "X-Warden-Model-Version" // name@version
	HeaderModelDigest  = "X-Warden-Model-Digest"  // sha256:<root digest>
)

// Gate is the stage that lets a request to a route bound to a registry
// model reach the upstream only while the model's active version is
// verified: signature and every file digest, checked by this process at
// promotion and at every re-check since. Anything else is refused with 503
// model_unverified (the audit record says why).
type Gate struct {
	store  *Store
	routes map[string]string // route name → model name
}

// NewGate gates the routes named in routes (route name → model name).
func NewGate(s *Store, routes map[string]string) *Gate {
	return &Gate{store: s, routes: routes}
}

// Handle implements gateway.Stage.
func (g *Gate) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex.Route == nil || ex.Route == gateway.NativeRoute {
		return next(ex)
	}
	model, ok := g.routes[ex.Route.Name]
	if !ok {
		return next(ex)
	}
	if g.store == nil {
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "model_unverified",
			errors.New("registry: gate without a store"), "the model behind this route is not verified; refusing to serve it")
	}
	sv, err := g.store.Servable(model)
	if err != nil {
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "model_unverified", err,
			"model %s has no verified active version; refusing to serve it", model)
	}
	h := ex.Request.Header
	h.Set(HeaderModelVersion, sv.Name+"@"+sv.Version)
	h.Set(HeaderModelDigest, "sha256:"+sv.RootDigest)
	return next(ex)
}

var _ gateway.Stage = (*Gate)(nil)
