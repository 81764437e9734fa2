// Package server assembles warden from its configuration: it opens the
// stores, compiles the policy, builds the stage chain and runs the data-plane
// and admin listeners. Anything that cannot be opened stops the start:
// warden never serves with a missing audit log, key store or policy.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/limit"
	"github.com/warden-ai/warden/internal/registry"
	"github.com/warden-ai/warden/internal/respond"
	"github.com/warden-ai/warden/internal/telemetry"
)

// Server is a configured warden instance.
type Server struct {
	cfg      *config.Config
	logger   *slog.Logger
	metrics  *telemetry.Metrics
	keys     *identity.KeyStore
	policy   *policyParts // authorize stage, reloader
	audit    *audit.Log
	handlers []http.Handler // one per listener: they differ only in the body limit
	self     *SelfSigned
	ident    *identityParts
	limits   *limit.Stage    // nil: no limits configured (internal/server/limits.go)
	proxy    *gateway.Proxy  // closes its pooled upstream connections at shutdown
	models   *registry.Store // nil: no model registry configured (internal/server/models.go)
	// responder is nil when responses are disabled (internal/server/respond.go).
	responder *respond.Responder
	// behavior is nil when behaviour is disabled (internal/server/behavior.go).
	behavior *behavior.Engine
	// extraChecks are readiness checks of components beyond audit and keys
	// (trust bundles, certificates, revocations, ...), by name.
	extraChecks map[string]func() error
	wctx        context.Context // lives until Close/Shutdown: background refreshes

	stop      context.CancelFunc
	servers   []*http.Server
	listeners []net.Listener
	admin     *http.Server
	adminLn   net.Listener
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Options tune a Server; the zero value is usable.
type Options struct {
	Logger *slog.Logger
	// KeysPollInterval is how often the key store file is checked for changes
	// made by `warden keys`. Default 250ms, so that a revocation plus the
	// stream revalidation interval stays well under a second.
	KeysPollInterval time.Duration
}

// New opens every component named in cfg. On error nothing is left open.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Server, err error) {
	s := &Server{cfg: cfg, logger: opts.Logger, extraChecks: map[string]func() error{}}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.wctx, s.stop = wctx, cancel
	defer func() {
		if err != nil {
			s.closeStores()
		}
	}()
	s.metrics = telemetry.NewMetrics()

	if s.audit, err = s.openAudit(cfg); err != nil { // internal/server/audit.go
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.keys, err = identity.OpenKeyStore(cfg.Keys.Path); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.policy, err = s.loadPolicy(ctx, cfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	var routes []gateway.RouteSpec
	var upstreams []gateway.UpstreamSpec
	for _, r := range cfg.Routes {
		routes = append(routes, gateway.RouteSpec{
			Name: r.Name, Prefix: r.Prefix, API: r.API, Segment: r.Segment,
			Upstream: r.Upstream.URL, StripPrefix: r.StripPrefix,
		})
		up := gateway.UpstreamSpec{
			Route: r.Name, URL: r.Upstream.URL,
			Timeout: r.Upstream.Timeout.D(), DialTimeout: r.Upstream.DialTimeout.D(),
		}
		if r.StripPrefix {
			up.StripPrefix = r.Prefix
		}
		if c := r.Upstream.Credential; c != nil {
			secret, err := c.Secret()
			if err != nil {
				return nil, fmt.Errorf("server: route %q: %w", r.Name, err)
			}
			up.CredentialHeader = c.Header
			up.CredentialValue = strings.TrimSpace(c.Scheme + " " + secret)
		}
		if r.Upstream.CAFile != "" {
			pem, err := os.ReadFile(r.Upstream.CAFile)
			if err != nil {
				return nil, fmt.Errorf("server: route %q: ca_file: %w", r.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("server: route %q: ca_file %s holds no PEM certificate", r.Name, r.Upstream.CAFile)
			}
			up.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		upstreams = append(upstreams, up)
	}
	router, err := gateway.NewRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	proxy, err := gateway.NewProxy(upstreams, s.logger)
	s.proxy = proxy
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	revalidate := cfg.Identity.RevalidateInterval.D()
	if revalidate <= 0 {
		revalidate = 250 * time.Millisecond
	}
	proxy.RevalidateEvery(revalidate)
	auditStage := audit.NewStage(s.audit, s.logger)
	if s.ident, err = s.buildIdentity(wctx, cfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	for name, check := range s.ident.checks {
		s.extraChecks[name] = check
	}
	identify := s.ident.stage
	for action, h := range s.ident.native {
		proxy.HandleNative(action, h)
	}
	grants, err := s.buildGrants(wctx, cfg, proxy)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	modelGate, err := s.buildModels(wctx, cfg, proxy) // internal/server/models.go; nil: no route bound to a model
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.behavior, err = s.buildBehavior(wctx, cfg); err != nil { // before assess, which reads risk from it
		return nil, fmt.Errorf("server: %w", err)
	}
	observe := behaviorStage(s.behavior)
	assessStage, err := s.buildAssess(wctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	authorize := s.policy.stage
	for kind, fn := range s.ident.enforcers {
		authorize.Enforce(kind, fn)
	}
	guards, err := s.buildGuards(cfg) // internal/server/guards.go
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	wireGuards(guards, authorize, proxy)
	mcpGateway, err := s.buildMCP(wctx, cfg, guards, authorize, proxy) // internal/server/mcp.go; nil: no mcp route
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.limits, err = s.buildLimits(wctx, cfg, authorize); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	sanctions, err := s.buildResponses(wctx, cfg, proxy) // after identity and limits
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.startBehavior(wctx) // now that the responder it reports to exists
	for _, l := range cfg.Listeners {
		// The order is the security argument: audit wraps everything (so every
		// outcome is recorded), the cheap route match comes before identity,
		// nothing is parsed before identity, and nothing is forwarded before policy.
		stages := []gateway.Stage{
			auditStage,
			observe, // behaviour: observes every outcome once the rest of the chain has returned
			router,
		}
		stages = append(stages, mcpErrorStages(mcpGateway)...) // MCP routes: refusals as JSON-RPC errors
		stages = append(stages,
			identify,
			sanctions, // quarantine and require_mfa before anything else; ex.Sanctions
			&gateway.BodyReader{MaxBytes: l.MaxBodyBytes},
		)
		stages = append(stages, mcpMessageStages(mcpGateway)...) // MCP routes: parse, action, tool, arguments, session binding
		stages = append(stages,
			assessStage, // ex.Assessment: posture, geo, risk; strips the posture header
			grants,      // ex.Grants: the principal's active just-in-time grants
		)
		stages = append(stages, guardStages(guards)...) // ex.Findings of the request body
		stages = append(stages, authorize)
		stages = append(stages, limitStages(s.limits)...) // requests and token budgets per principal
		if modelGate != nil {
			stages = append(stages, modelGate) // a route bound to a model forwards only to a verified active version
		}
		stages = append(stages, proxy)
		s.handlers = append(s.handlers, withJWKS(s.ident.jwks,
			gateway.NewHandler(stages, gateway.HandlerOptions{Logger: s.logger, Observer: s.metrics})))
	}

	for _, l := range cfg.Listeners {
		if l.TLS.Mode == config.TLSModeSelfSigned && s.self == nil {
			if s.self, err = newSelfSigned(time.Now()); err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
		}
	}
	pollEvery := opts.KeysPollInterval
	if pollEvery <= 0 {
		pollEvery = 250 * time.Millisecond
	}
	go s.keys.Watch(wctx, pollEvery, s.logger)
	s.watchPolicy(wctx)
	go s.keys.RunLastUsedFlusher(wctx, 0, s.logger) // default interval: once a minute
	return s, nil
}

// Handler returns the data-plane handler of the i-th listener (for in-process tests and benchmarks).
func (s *Server) Handler(i int) http.Handler { return s.handlers[i] }

// SelfSignedCertPEM returns the generated certificate, nil when none was generated.
func (s *Server) SelfSignedCertPEM() []byte {
	if s.self == nil {
		return nil
	}
	return s.self.CertPEM
}

// Start binds every listener and serves in the background.
func (s *Server) Start() error {
	for i, l := range s.cfg.Listeners {
		tcfg, err := s.listenerTLSConfig(s.wctx, l)
		if err != nil {
			s.Close()
			return fmt.Errorf("server: %w", err)
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.Close()
			return fmt.Errorf("server: listener %q: %w", l.Name, err)
		}
		switch l.TLS.Mode {
		case config.TLSModeSelfSigned:
			s.logger.Warn("TLS WARNING: listener uses a SELF-SIGNED certificate generated at start; clients cannot verify it. Configure tls.cert_file/key_file for production.",
				"listener", l.Name, "address", ln.Addr().String())
		case config.TLSModeOff:
			s.logger.Warn("TLS WARNING: listener serves PLAINTEXT HTTP; credentials and prompts cross the network in clear. Use only on loopback or behind a TLS terminator.",
				"listener", l.Name, "address", ln.Addr().String())
		}
		srv := &http.Server{
			Handler:           s.handlers[i],
			TLSConfig:         tcfg,
			ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
			ReadTimeout:       l.ReadTimeout.D(),
			IdleTimeout:       l.IdleTimeout.D(),
			MaxHeaderBytes:    l.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
			ConnContext:       gateway.ConnContext, // the client's TLS fingerprint, for behaviour
			// WriteTimeout stays 0: SSE streams legitimately last minutes.
		}
		if tcfg != nil {
			ln = tls.NewListener(gateway.FingerprintListener(ln, tcfg), tcfg)
		}
		s.servers = append(s.servers, srv)
		s.listeners = append(s.listeners, ln)
		s.serve(srv, ln, "listener "+l.Name)
	}
	if s.cfg.Admin.Address != "off" {
		ln, err := net.Listen("tcp", s.cfg.Admin.Address)
		if err != nil {
			s.Close()
			return fmt.Errorf("server: admin listener: %w", err)
		}
		s.adminLn = ln
		s.admin = &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)}
		s.serve(s.admin, ln, "admin")
	}
	s.logger.Info("warden started", "listeners", s.ListenerAddrs(), "admin", s.AdminAddr(),
		"policy_version", s.policyVersion(), "routes", len(s.cfg.Routes))
	return nil
}

func (s *Server) serve(srv *http.Server, ln net.Listener, what string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("server: "+what+" stopped", "err", err)
		}
	}()
}

// ListenerAddrs returns the bound data-plane addresses, in config order.
func (s *Server) ListenerAddrs() []string {
	var out []string
	for _, ln := range s.listeners {
		out = append(out, ln.Addr().String())
	}
	return out
}

// AdminAddr returns the bound admin address, "" when disabled or not started.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Ready reports every failing readiness check; nil means ready.
func (s *Server) Ready() map[string]string {
	failing := map[string]string{}
	if err := s.audit.Healthy(); err != nil {
		failing["audit"] = err.Error()
	}
	if err := s.keys.Healthy(); err != nil {
		failing["keys"] = err.Error()
	}
	for name, check := range s.extraChecks {
		if err := check(); err != nil {
			failing[name] = err.Error()
		}
	}
	if len(failing) == 0 {
		return nil
	}
	return failing
}

func (s *Server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if failing := s.Ready(); failing != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "policy_version": s.policyVersion()})
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /policy", s.handlePolicy)
	s.auditRoutes(mux) // GET /audit/checkpoint, /audit/key, /audit/status
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Shutdown stops accepting requests, waits for in-flight ones until ctx ends,
// then closes the audit log (flushing it) and the stores.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.admin != nil {
		if err := s.admin.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	if err := s.closeStores(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close stops everything at once.
func (s *Server) Close() error {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.admin != nil {
		_ = s.admin.Close()
	}
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	if s.adminLn != nil {
		_ = s.adminLn.Close()
	}
	s.wg.Wait()
	return s.closeStores()
}

func (s *Server) closeStores() error {
	var err error
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		if s.keys != nil {
			// No request can authenticate any more: persist the last-used times.
			if ferr := s.keys.FlushLastUsed(); ferr != nil {
				s.logger.Warn("server: flush API key last-used times", "err", ferr)
			}
		}
		if s.ident != nil {
			for _, c := range s.ident.closers {
				_ = c()
			}
		}
		if s.limits != nil {
			_ = s.limits.Close()
		}
		if s.proxy != nil {
			s.proxy.Close()
		}
		if s.audit != nil {
			err = s.audit.Close()
		}
	})
	return err
}
