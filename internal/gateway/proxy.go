package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// UpstreamSpec configures how one route reaches its upstream.
type UpstreamSpec struct {
	Route       string // route name, to find the proxy for an exchange
	URL         string
	StripPrefix string // removed from the path before it is joined to URL's path ("" = keep)
	// CredentialHeader/CredentialValue is what warden presents upstream, already
	// formatted ("Bearer sk-..."). Empty header: nothing is injected.
	CredentialHeader string
	CredentialValue  string
	Timeout          time.Duration // wait for response headers (504 after)
	DialTimeout      time.Duration
	TLSConfig        *tls.Config // for https upstreams; nil uses the system roots
}

// clientCredentialHeaders are stripped from every upstream request: the
// client's credentials prove the client to warden and never travel further.
// Account-scoping headers go too, since upstream requests run on warden's
// own credential.
var clientCredentialHeaders = []string{
	"Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Cookie",
	"OpenAI-Organization", "OpenAI-Project", "X-Warden-Token",
	// Accept-Encoding is removed so responses arrive uncompressed and can be inspected.
	"Accept-Encoding",
}

// Proxy is the terminal stage: it forwards the exchange to its route's
// upstream with httputil.ReverseProxy and streams the response back. SSE
// responses are flushed event by event (ReverseProxy flushes text/event-stream
// immediately). Upstream connect failures become 502, header timeouts 504.
type Proxy struct {
	proxies map[string]*httputil.ReverseProxy
	logger  *slog.Logger
}

type exchangeKey struct{}

// proxyState is stored in the outbound request context so the ReverseProxy
// callbacks can report to the stage without shared mutable state.
type proxyState struct {
	ex     *Exchange
	err    error
	sentAt time.Time
}

// NewProxy builds one reverse proxy per upstream.
func NewProxy(specs []UpstreamSpec, logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Proxy{proxies: map[string]*httputil.ReverseProxy{}, logger: logger}
	for _, s := range specs {
		rp, err := newReverseProxy(s)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %q: %w", s.Route, err)
		}
		p.proxies[s.Route] = rp
	}
	return p, nil
}

func newReverseProxy(s UpstreamSpec) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(s.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream url: %w", err)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" || target.User != nil {
		return nil, fmt.Errorf("upstream url must be http(s)://host[:port][/path] without credentials")
	}
	dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       s.TLSConfig,
		TLSHandshakeTimeout:   s.DialTimeout,
		ResponseHeaderTimeout: s.Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     target.Scheme == "https",
		DisableCompression:    true,
	}
	rp := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			if s.StripPrefix != "" {
				pr.Out.URL.Path = "/" + strings.TrimPrefix(pr.In.URL.Path, s.StripPrefix)
				pr.Out.URL.RawPath = ""
			}
			pr.SetURL(target) // joins paths and keeps the client's query
			for _, h := range clientCredentialHeaders {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Del("Upgrade")
			pr.SetXForwarded()
			if st, ok := pr.In.Context().Value(exchangeKey{}).(*proxyState); ok {
				pr.Out.Header.Set(RequestIDHeader, st.ex.ID)
				st.sentAt = time.Now()
			}
			if s.CredentialHeader != "" {
				pr.Out.Header.Set(s.CredentialHeader, s.CredentialValue)
			}
		},
		ModifyResponse: func(res *http.Response) error {
			if st, ok := res.Request.Context().Value(exchangeKey{}).(*proxyState); ok {
				st.ex.UpstreamStatus = res.StatusCode
				st.ex.UpstreamTime = time.Since(st.sentAt)
			}
			// The upstream must not set cookies in the client's name on warden's origin.
			res.Header.Del("Set-Cookie")
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, r *http.Request, err error) {
			if st, ok := r.Context().Value(exchangeKey{}).(*proxyState); ok {
				st.err = err
			}
		},
	}
	return rp, nil
}

// Handle implements Stage. It does not call next: it is the end of the chain.
func (p *Proxy) Handle(ex *Exchange, _ func(*Exchange) error) error {
	if ex.Route == nil {
		return errors.New("gateway: proxy stage ran before the route match")
	}
	if ex.Principal == nil || ex.Decision == nil || !ex.Decision.Allow {
		// Defence in depth: the chain must never reach the upstream unproven or unauthorised.
		return fmt.Errorf("gateway: proxy reached without an allowed decision for a proven principal")
	}
	rp, ok := p.proxies[ex.Route.Name]
	if !ok {
		return fmt.Errorf("gateway: no upstream for route %q", ex.Route.Name)
	}
	st := &proxyState{ex: ex}
	req := ex.Request.WithContext(context.WithValue(ex.Request.Context(), exchangeKey{}, st))
	if ex.Body != nil {
		req.Body = io.NopCloser(bytes.NewReader(ex.Body))
		req.ContentLength = int64(len(ex.Body))
		req.TransferEncoding = nil
		req.Header.Del("Content-Length")
	} else {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	rp.ServeHTTP(ex.Writer, req)
	if st.err == nil {
		return nil
	}
	if ex.Writer.Started() {
		return Errorf(http.StatusBadGateway, TypeUpstream, "upstream_aborted", st.err, "upstream aborted")
	}
	return upstreamError(ex.Request.Context(), st.err)
}

// upstreamError maps a transport error to 502/504, or to 499 when the client went away.
func upstreamError(clientCtx context.Context, err error) *Error {
	if clientCtx.Err() != nil {
		return Errorf(499, TypeInvalidRequest, "client_closed", err, "client closed the request")
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return Errorf(http.StatusGatewayTimeout, TypeUpstream, "upstream_timeout", err,
			"the upstream did not respond in time")
	}
	return Errorf(http.StatusBadGateway, TypeUpstream, "upstream_unavailable", err,
		"the upstream is unavailable")
}

var _ Stage = (*Proxy)(nil)
