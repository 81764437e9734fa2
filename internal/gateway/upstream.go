package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// syncUpstream is the HTTP/1.1 client warden uses for plain-http upstreams
// (the usual case: a model server or MCP server next to warden).
//
// Why it is written by hand: http.Transport runs a readLoop and a writeLoop
// goroutine per connection and hands every request and response between them
// and the caller through channels. Measured under load (bench/transport/
// FINDINGS.md), that plumbing plus ReverseProxy's request cloning costs about
// 30 µs of CPU per request, as much as nginx spends on the whole request, and
// it alone put warden's throughput target out of reach. Here the handler's
// goroutine does everything: it takes a persistent connection from a LIFO
// pool, writes the request with a bufio.Writer, reads the response with
// http.ReadResponse (net/http's own parser, so framing, chunking and 1xx
// handling are the standard library's), copies the body to the client,
// flushing streamed bodies after every read so SSE is forwarded event by
// event, and returns the connection to the pool when the body ended cleanly.
//
// https upstreams keep http.Transport: they get HTTP/2 and the standard TLS
// session handling, and they are remote, where this cost is noise.
//
// The request body is always already in memory (the body stage reads it,
// bounded), so a request that failed on a stale pooled connection before
// anything was written can be retried on a fresh one.
type syncUpstream struct {
	target      *url.URL
	addr        string // host:port to dial
	host        string // Host header
	spec        UpstreamSpec
	idleTimeout time.Duration // pooled connections idle longer are closed
	probeAfter  time.Duration // pooled connections idle longer are checked before reuse
	maxIdle     int

	mu   sync.Mutex
	idle []*upstreamConn // LIFO: the most recently used is reused first
}

type upstreamConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

const (
	upstreamIdleTimeout = 90 * time.Second
	upstreamProbeAfter  = time.Second
	upstreamMaxIdle     = 512
	// probeWait bounds the liveness check of a connection idle for longer
	// than probeAfter; only such connections pay it.
	probeWait = 100 * time.Microsecond
)

// longAgo is a deadline in the past: setting it unblocks every pending
// read and write on a connection at once.
var longAgo = time.Unix(1, 0)

func newSyncUpstream(s UpstreamSpec, target *url.URL) (*syncUpstream, error) {
	if err := validHeader(s.CredentialHeader, s.CredentialValue); err != nil {
		return nil, fmt.Errorf("upstream credential: %w", err)
	}
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), "80")
	}
	return &syncUpstream{
		target: target, addr: addr, host: target.Host, spec: s,
		idleTimeout: upstreamIdleTimeout, probeAfter: upstreamProbeAfter, maxIdle: upstreamMaxIdle,
	}, nil
}

// validHeader checks a header warden adds itself, so a credential read from
// a file can never inject a header line (RFC 9110 §5.5 forbids CR and LF).
func validHeader(name, value string) error {
	if name == "" {
		return nil
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("invalid header name %q", name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return errors.New("the header value contains characters not allowed in a header (CR, LF or controls)")
	}
	return nil
}

// get returns a pooled connection (reused=true) or dials a new one.
func (u *syncUpstream) get(ctx context.Context) (*upstreamConn, bool, error) {
	now := time.Now()
	for {
		u.mu.Lock()
		n := len(u.idle)
		if n == 0 {
			u.mu.Unlock()
			break
		}
		c := u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		u.mu.Unlock()
		idle := now.Sub(c.lastUsed)
		if idle > u.idleTimeout {
			_ = c.c.Close()
			continue
		}
		// Nothing reads idle connections, so the pool cannot see an upstream
		// close one. After a pause, check before reuse: a read with a very
		// short deadline must time out; data or EOF means the connection is
		// unusable. (A deadline already in the past would fail the read
		// before it is tried, hence "now + probeWait".)
		if idle > u.probeAfter {
			_ = c.c.SetReadDeadline(now.Add(probeWait))
			_, err := c.br.Peek(1)
			if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
				_ = c.c.Close()
				continue
			}
		}
		return c, true, nil
	}
	d := net.Dialer{Timeout: u.spec.DialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, false, err
	}
	return &upstreamConn{c: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

// put returns a connection to the pool, closing the oldest idle one when it
// has been idle too long.
func (u *syncUpstream) put(c *upstreamConn) {
	c.lastUsed = time.Now()
	u.mu.Lock()
	var stale *upstreamConn
	if len(u.idle) > 0 && c.lastUsed.Sub(u.idle[0].lastUsed) > u.idleTimeout {
		stale = u.idle[0]
		copy(u.idle, u.idle[1:])
		u.idle[len(u.idle)-1] = nil
		u.idle = u.idle[:len(u.idle)-1]
	}
	if len(u.idle) < u.maxIdle {
		u.idle = append(u.idle, c)
		c = nil
	}
	u.mu.Unlock()
	if stale != nil {
		_ = stale.c.Close()
	}
	if c != nil {
		_ = c.c.Close()
	}
}

// close closes every pooled connection.
func (u *syncUpstream) close() {
	u.mu.Lock()
	idle := u.idle
	u.idle = nil
	u.mu.Unlock()
	for _, c := range idle {
		_ = c.c.Close()
	}
}

// errCopyAborted marks a failure after the response had started: the
// client got part of it, and the connection must be aborted rather than
// the response finished, or a truncated body would look complete.
var errCopyAborted = errors.New("gateway: response copy aborted")

// forward sends the exchange upstream and copies the response to the
// client. Like ReverseProxy's ErrorHandler, it reports a failure before
// the response started in st.err and returns nil; after the response
// started it returns an error wrapping errCopyAborted.
func (u *syncUpstream) forward(ctx context.Context, st *proxyState) error {
	ex := st.ex
	r := ex.Request
	uri := u.requestURI(r.URL)
	var (
		c      *upstreamConn
		res    *http.Response
		reused bool
		err    error
		stop   func() bool
	)
	for attempt := 0; ; attempt++ {
		c, reused, err = u.get(ctx)
		if err != nil {
			st.err = err
			return nil
		}
		// The exchange ending (client gone, credential revoked) unblocks the
		// connection at once; it is then discarded, never pooled.
		conn := c.c
		stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
		if u.spec.Timeout > 0 {
			_ = c.c.SetDeadline(time.Now().Add(u.spec.Timeout))
		} else {
			_ = c.c.SetDeadline(time.Time{})
		}
		if ctx.Err() != nil { // cancelled before the deadline above was set
			_ = c.c.SetDeadline(longAgo)
		}
		st.sentAt = time.Now()
		wrote, answered := false, false
		if err = u.writeRequest(c.bw, st, uri); err == nil {
			err = c.bw.Flush()
			wrote = err == nil
		}
		if err == nil {
			if _, err = c.br.Peek(1); err == nil {
				answered = true
				res, err = readFinalResponse(c.br, r)
			}
		}
		if err == nil {
			break
		}
		stop()
		_ = c.c.Close()
		// Retry once on a fresh connection when a pooled one failed and the
		// upstream cannot have acted on the request: the write failed, or
		// it closed without a byte of response to an idempotent request
		// (RFC 9112 §9.3.1).
		if attempt == 0 && reused && ctx.Err() == nil &&
			(!wrote || (!answered && isClosedErr(err) && idempotentMethod(r.Method))) {
			continue
		}
		st.err = err
		return nil
	}
	// The header timeout is over: a stream may legitimately last minutes.
	_ = c.c.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		_ = c.c.SetDeadline(longAgo)
	}

	// body tracks whether the upstream body was read to its end, whatever
	// the inspector wraps around it: only then can the connection be reused.
	body := &trackedBody{ReadCloser: res.Body}
	res.Body = body
	if err := st.onResponse(res); err != nil {
		stop()
		_ = c.c.Close() // the body was not consumed: never reuse
		_ = body.ReadCloser.Close()
		st.err = err
		return nil
	}

	h := ex.Writer.Header()
	connTokens := res.Header["Connection"]
	for k, vv := range res.Header {
		if isHopHeader(k) || headerListed(connTokens, k) {
			continue
		}
		h[k] = vv
	}
	ex.Writer.WriteHeader(res.StatusCode)

	// As ReverseProxy does: bodies of unknown length and event streams are
	// flushed after every read, so the client sees each SSE event as soon as
	// warden has it.
	flush := res.ContentLength < 0 || isEventStream(res.Header)
	if res.ContentLength != 0 {
		bp := copyBuffers.Get()
		var rerr, werr error
		for {
			n, err := res.Body.Read(bp)
			if n > 0 {
				if _, werr = ex.Writer.Write(bp[:n]); werr != nil {
					break
				}
				if flush {
					ex.Writer.Flush()
				}
			}
			if err != nil {
				if err != io.EOF {
					rerr = err
				}
				break
			}
		}
		copyBuffers.Put(bp)
		if rerr != nil || werr != nil {
			stop()
			_ = c.c.Close()
			_ = res.Body.Close()
			if rerr != nil {
				return fmt.Errorf("%w: upstream read: %w", errCopyAborted, rerr)
			}
			return fmt.Errorf("%w: client write: %w", errCopyAborted, werr)
		}
	} else {
		body.eof = true // nothing to read: 204, 304, HEAD, Content-Length: 0
	}
	_ = res.Body.Close() // consumes a chunked body's trailer
	if stop() && body.eof && !res.Close {
		u.put(c)
	} else {
		_ = c.c.Close()
	}
	return nil
}

// requestURI is the request target sent upstream: the route's prefix
// stripped, joined to the upstream URL's path, the client's query kept
// (with the upstream URL's own query first), as ReverseProxy's
// ProxyRequest.SetURL does.
func (u *syncUpstream) requestURI(in *url.URL) string {
	out := upstreamURL(u.spec, u.target, in)
	out.Scheme, out.Host = "", ""
	return out.RequestURI()
}

// upstreamURL maps the URL a client sent to warden onto the route's
// upstream target as the proxy forwards it: the route's prefix stripped,
// the target's path joined before the rest, the target's query first.
func upstreamURL(spec UpstreamSpec, target, in *url.URL) *url.URL {
	out := *in
	if spec.StripPrefix != "" {
		out.Path = "/" + strings.TrimPrefix(in.Path, spec.StripPrefix)
		out.RawPath = ""
	}
	out.Path, out.RawPath = joinURLPath(target, &out)
	if target.RawQuery != "" {
		if out.RawQuery == "" {
			out.RawQuery = target.RawQuery
		} else {
			out.RawQuery = target.RawQuery + "&" + out.RawQuery
		}
	}
	out.Scheme, out.Host, out.Opaque, out.User, out.Fragment, out.RawFragment = target.Scheme, target.Host, "", nil, "", ""
	return &out
}

// writeRequest writes the request head and body. Headers are the client's
// minus hop-by-hop headers (RFC 9110 §7.6.1), the client's credentials and
// any X-Forwarded-* it sent (an attacker-chosen forwarding chain is not
// passed on); warden adds X-Forwarded-*, its request id and the route's
// credential.
func (u *syncUpstream) writeRequest(bw *bufio.Writer, st *proxyState, uri string) error {
	r := st.ex.Request
	body := st.ex.Body
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(u.host)
	bw.WriteString("\r\n")
	connTokens := r.Header["Connection"]
	for k, vv := range r.Header {
		if isHopHeader(k) || headerListed(connTokens, k) || droppedUpstream(k) ||
			(u.spec.CredentialHeader != "" && strings.EqualFold(k, u.spec.CredentialHeader)) {
			continue
		}
		for _, v := range vv {
			// net/http's server validated what the client sent; a stage may
			// have added headers since, so check again rather than trust.
			if err := validHeader(k, v); err != nil {
				return fmt.Errorf("gateway: request header %q: %w", k, err)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	// "TE: trailers" is the one TE value that is end-to-end in effect (it
	// says the client accepts trailers); ReverseProxy forwards it too.
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	if r.Host != "" && httpguts.ValidHeaderFieldValue(r.Host) {
		bw.WriteString("X-Forwarded-Host: ")
		bw.WriteString(r.Host)
		bw.WriteString("\r\n")
	}
	if r.TLS != nil {
		bw.WriteString("X-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("X-Forwarded-Proto: http\r\n")
	}
	bw.WriteString(RequestIDHeader)
	bw.WriteString(": ")
	bw.WriteString(st.ex.ID)
	bw.WriteString("\r\n")
	if u.spec.CredentialHeader != "" {
		bw.WriteString(u.spec.CredentialHeader)
		bw.WriteString(": ")
		bw.WriteString(u.spec.CredentialValue)
		bw.WriteString("\r\n")
	}
	if len(body) > 0 || methodHasBody(r.Method) {
		bw.WriteString("Content-Length: ")
		var nb [20]byte
		bw.Write(strconv.AppendInt(nb[:0], int64(len(body)), 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	_, err := bw.Write(body)
	return err
}

// readFinalResponse reads the final response, skipping interim 1xx
// responses (RFC 9110 §15.2). 101 is refused: warden strips Upgrade, so an
// upstream switching protocols is misbehaving.
func readFinalResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for range 10 {
		res, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("gateway: upstream switched protocols without being asked")
		case res.StatusCode >= 200:
			return res, nil
		}
	}
	return nil, errors.New("gateway: upstream sent too many interim (1xx) responses")
}

// isClosedErr reports whether err is the peer closing or resetting the
// connection, as opposed to a timeout or a cancellation.
func isClosedErr(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	return false
}

// trackedBody records whether the upstream body was read to its end.
type trackedBody struct {
	io.ReadCloser
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// hopHeaders are the connection-specific headers of RFC 9110 §7.6.1 (plus
// the obsolete Proxy-Connection and Keep-Alive), in canonical form; they
// apply to one hop and are never forwarded.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

func isHopHeader(canonical string) bool { return hopHeaders[canonical] }

// headerListed reports whether the canonical header name k is one of the
// tokens of the Connection header values (those headers are hop-by-hop too).
func headerListed(connection []string, k string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), k) {
				return true
			}
		}
	}
	return false
}

// upstreamDropped are the canonical names of the client headers that never
// travel upstream: its credentials (clientCredentialHeaders), the
// forwarding headers warden sets itself, the framing warden recomputes, and
// Expect (the body is already read).
var upstreamDropped = func() map[string]bool {
	m := map[string]bool{
		"Content-Length": true, "Host": true, "Expect": true, RequestIDHeader: true,
		"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true,
	}
	for _, h := range clientCredentialHeaders {
		m[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	return m
}()

func droppedUpstream(canonical string) bool { return upstreamDropped[canonical] }

func methodHasBody(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// joinURLPath and singleJoiningSlash are net/http/httputil's (unexported
// there), so paths join exactly as they did through ReverseProxy.
func joinURLPath(a, b *url.URL) (path, rawpath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return singleJoiningSlash(a.Path, b.Path), ""
	}
	apath := a.EscapedPath()
	bpath := b.EscapedPath()
	aslash := strings.HasSuffix(apath, "/")
	bslash := strings.HasPrefix(bpath, "/")
	switch {
	case aslash && bslash:
		return a.Path + b.Path[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + b.Path, apath + "/" + bpath
	}
	return a.Path + b.Path, apath + bpath
}

func singleJoiningSlash(a, b string) string {
	aslash := strings.HasSuffix(a, "/")
	bslash := strings.HasPrefix(b, "/")
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}
