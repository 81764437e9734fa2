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
	"sync"
	"sync/atomic"
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
// upstream and streams the response back. Plain-http upstreams go through
// warden's synchronous HTTP/1.1 client (syncUpstream, upstream.go); https
// upstreams through httputil.ReverseProxy over http.Transport (HTTP/2, the
// standard TLS session handling). Either way SSE responses are flushed event
// by event, upstream connect failures become 502 and header timeouts 504.
type Proxy struct {
	proxies map[string]*httputil.ReverseProxy // https upstreams
	plain   map[string]*syncUpstream          // http upstreams
	side    map[string]*sideClient            // warden's own requests, by route (send.go)
	native  map[string]NativeHandler          // by action, for NativeRoute
	logger  *slog.Logger
	// revalidateEvery is how often an exchange re-checks its credential while
	// it waits for or streams the upstream response (0: never).
	revalidateEvery time.Duration
	// inspector, when set, inspects every upstream response before any of
	// it reaches the client (SetResponseInspector).
	inspector ResponseInspector
}

// A ResponseInspector inspects an upstream response before any of it
// reaches the client: it may replace res.Body (a stream rewritten as it is
// read) and headers. An error refuses the response: a *Error is answered
// as it is (e.g. 403), anything else as 502. done, if not nil, is called
// once the body has been copied to the client (to record findings).
// Implementations live outside gateway (internal/inspect), so gateway never
// depends on the guards.
type ResponseInspector interface {
	InspectResponse(ex *Exchange, res *http.Response) (done func(), err error)
}

// SetResponseInspector makes in inspect every proxied response. It must be
// called before the proxy serves.
func (p *Proxy) SetResponseInspector(in ResponseInspector) { p.inspector = in }

// A NativeHandler serves one of warden's own endpoints (NativeRoute). It
// runs after identify, body and authorize, like a proxied request, and
// writes its response to ex.Writer; an error it returns ends the exchange
// like any stage error.
type NativeHandler interface {
	ServeExchange(ex *Exchange) error
}

// NativeHandlerFunc adapts a function to NativeHandler.
type NativeHandlerFunc func(ex *Exchange) error

// ServeExchange calls f.
func (f NativeHandlerFunc) ServeExchange(ex *Exchange) error { return f(ex) }

// HandleNative registers h for a native action (e.g. "token.exchange").
func (p *Proxy) HandleNative(action string, h NativeHandler) { p.native[action] = h }

// RevalidateEvery sets how often long-lived exchanges re-check their
// credential; a failed check ends them (see Exchange.Revalidate).
func (p *Proxy) RevalidateEvery(d time.Duration) { p.revalidateEvery = d }

type exchangeKey struct{}

// proxyState is stored in the outbound request context so the ReverseProxy
// callbacks can report to the stage without shared mutable state.
type proxyState struct {
	ex      *Exchange
	err     error
	sentAt  time.Time
	revoked atomic.Pointer[error] // set when revalidation failed mid-exchange
	inspect ResponseInspector     // the proxy's, nil when responses are not inspected
	done    func()                // the inspector's, called after the body was copied
}

// onResponse runs on the upstream's response before any of it reaches the
// client: it records the upstream status and time, arms the mid-stream cut
// on revocation and runs the response inspector. An error refuses the
// response.
func (st *proxyState) onResponse(res *http.Response) error {
	st.ex.UpstreamStatus = res.StatusCode
	st.ex.UpstreamTime = time.Since(st.sentAt)
	if st.ex.Revalidate != nil && isEventStream(res.Header) {
		res.Body = &sseCutBody{inner: res.Body, st: st}
	}
	// The upstream must not set cookies in the client's name on warden's origin.
	res.Header.Del("Set-Cookie")
	if st.inspect != nil {
		done, err := st.inspect.InspectResponse(st.ex, res)
		if err != nil {
			return err
		}
		st.done = done
	}
	return nil
}

func (st *proxyState) revokedErr() error {
	if e := st.revoked.Load(); e != nil {
		return *e
	}
	return nil
}

// NewProxy builds one reverse proxy per upstream.
func NewProxy(specs []UpstreamSpec, logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Proxy{proxies: map[string]*httputil.ReverseProxy{}, plain: map[string]*syncUpstream{},
		side: map[string]*sideClient{}, native: map[string]NativeHandler{}, logger: logger}
	for _, s := range specs {
		target, err := url.Parse(s.URL)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %q: upstream url: %w", s.Route, err)
		}
		if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" || target.User != nil {
			return nil, fmt.Errorf("gateway: route %q: upstream url must be http(s)://host[:port][/path] without credentials", s.Route)
		}
		if target.Scheme == "http" {
			u, err := newSyncUpstream(s, target)
			if err != nil {
				return nil, fmt.Errorf("gateway: route %q: %w", s.Route, err)
			}
			p.plain[s.Route] = u
			p.side[s.Route] = newSideClient(s, target, nil)
			continue
		}
		rp, err := newReverseProxy(s, target)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %q: %w", s.Route, err)
		}
		p.proxies[s.Route] = rp
		p.side[s.Route] = newSideClient(s, target, rp.Transport)
	}
	return p, nil
}

// Close closes the idle upstream connections warden holds.
func (p *Proxy) Close() {
	for _, u := range p.plain {
		u.close()
	}
	for _, rp := range p.proxies {
		if t, ok := rp.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
	for _, c := range p.side {
		c.client.CloseIdleConnections()
	}
}

func newReverseProxy(s UpstreamSpec, target *url.URL) (*httputil.ReverseProxy, error) {
	if err := validHeader(s.CredentialHeader, s.CredentialValue); err != nil {
		return nil, fmt.Errorf("upstream credential: %w", err)
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
		Transport:  transport,
		BufferPool: copyBuffers,
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
				return st.onResponse(res) // an error goes to ErrorHandler: nothing was sent
			}
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

// copyBuffers recycles the buffers ReverseProxy copies response bodies
// through. Without a pool it allocates a new 32 KiB buffer for every
// response, which at a few thousand requests a second is most of warden's
// allocation volume and drives the garbage collector.
var copyBuffers = &bufferPool{}

// bufferPool is an httputil.BufferPool over a sync.Pool.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10 // what ReverseProxy allocates without a pool

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return // not one of ours
	}
	buf = buf[:copyBufferSize]
	b.p.Put(&buf)
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
	if ex.Route.API == NativeRoute.API {
		h, ok := p.native[ex.Action]
		if !ok {
			return Errorf(http.StatusNotFound, TypeNotFound, "unknown_endpoint",
				fmt.Errorf("no native handler for %q", ex.Action), "this endpoint is not enabled")
		}
		return h.ServeExchange(ex)
	}
	rp, ok := p.proxies[ex.Route.Name]
	plain, okPlain := p.plain[ex.Route.Name]
	if !ok && !okPlain {
		return fmt.Errorf("gateway: no upstream for route %q", ex.Route.Name)
	}
	ctx, cancel := context.WithCancel(ex.Request.Context())
	defer cancel()
	st := &proxyState{ex: ex, inspect: p.inspector}
	if ex.Revalidate != nil && p.revalidateEvery > 0 {
		stop := p.watchCredential(ex, st, cancel)
		defer stop()
	}
	if okPlain {
		cerr := plain.forward(ctx, st)
		if st.done != nil {
			st.done()
		}
		if cerr != nil {
			// Part of the response was sent and the rest cannot be: abort the
			// connection (as ReverseProxy does) so the client cannot take a
			// truncated body for a complete one; audit records the abort.
			p.logger.Info("gateway: response aborted mid-body", "request_id", ex.ID, "cause", cerr.Error())
			panic(http.ErrAbortHandler)
		}
	} else {
		req := ex.Request.WithContext(context.WithValue(ctx, exchangeKey{}, st))
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
		if st.done != nil {
			st.done()
		}
	}
	if rerr := st.revokedErr(); rerr != nil {
		// The credential failed while the exchange ran: it ended (a stream
		// with a final error event, a pending request before any byte).
		return Errorf(http.StatusUnauthorized, TypeAuthentication, CodeCredentialRevoked, rerr,
			"the credential was revoked or has expired")
	}
	if st.err == nil {
		return nil
	}
	if ex.Writer.Started() {
		return Errorf(http.StatusBadGateway, TypeUpstream, "upstream_aborted", st.err, "upstream aborted")
	}
	if ge, ok := errors.AsType[*Error](st.err); ok {
		return ge // the response inspector refused the response
	}
	return upstreamError(ex.Request.Context(), st.err)
}

// watchCredential re-checks the exchange's credential every revalidateEvery
// until stop is called. On the first failure it records the cause and
// cancels the upstream request, which ends a pending request at once and a
// stream at its next read (sseCutBody turns that into a final error event).
// It uses a timer, not a goroutine: most exchanges end before the first
// check is due and then cost only the timer's start and stop.
func (p *Proxy) watchCredential(ex *Exchange, st *proxyState, cancel context.CancelFunc) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	check := func() {
		if err := ex.Revalidate(time.Now()); err != nil {
			st.revoked.Store(&err)
			p.logger.Info("gateway: credential failed mid-exchange; ending it",
				"request_id", ex.ID, "principal", ex.Principal.ID, "cause", err.Error())
			cancel()
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(p.revalidateEvery)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(p.revalidateEvery, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// isEventStream reports whether the response is an SSE stream.
func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// sseCutBody wraps an upstream SSE body. When the exchange's credential
// fails mid-stream, the upstream read is cancelled and, instead of a cut
// connection, the client receives a well-formed final SSE event carrying an
// OpenAI-shaped error, then the end of the stream.
type sseCutBody struct {
	inner io.ReadCloser
	st    *proxyState
	tail  [2]byte // last two bytes passed through, to end on an event boundary
	n     int64
	final *bytes.Reader
}

func (b *sseCutBody) Read(p []byte) (int, error) {
	if b.final != nil {
		return b.final.Read(p)
	}
	n, err := b.inner.Read(p)
	if n > 0 {
		b.remember(p[:n])
	}
	if err != nil {
		if rerr := b.st.revokedErr(); rerr != nil {
			b.final = bytes.NewReader(b.terminator())
			if n > 0 {
				return n, nil
			}
			return b.final.Read(p)
		}
	}
	return n, err
}

func (b *sseCutBody) remember(p []byte) {
	b.n += int64(len(p))
	if len(p) >= 2 {
		b.tail = [2]byte{p[len(p)-2], p[len(p)-1]}
	} else {
		b.tail = [2]byte{b.tail[1], p[0]}
	}
}

// terminator is the final event, preceded by whatever line breaks complete
// the event in progress (an unfinished event is dispatched by the blank
// line; clients discard it if it is incomplete JSON).
func (b *sseCutBody) terminator() []byte {
	var buf bytes.Buffer
	switch {
	case b.n == 0 || (b.tail[0] == '\n' && b.tail[1] == '\n'):
	case b.tail[1] == '\n':
		buf.WriteString("\n")
	default:
		buf.WriteString("\n\n")
	}
	buf.WriteString(`event: error` + "\n")
	buf.WriteString(`data: {"error":{"message":"the credential was revoked or has expired; the stream was ended","type":"authentication_error","code":"credential_revoked","request_id":"` +
		b.st.ex.ID + `"}}` + "\n\n")
	return buf.Bytes()
}

func (b *sseCutBody) Close() error { return b.inner.Close() }

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

var (
	_ Stage               = (*Proxy)(nil)
	_ httputil.BufferPool = (*bufferPool)(nil)
)
