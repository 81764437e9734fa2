package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// sideClient makes requests of warden's own to one route's upstream (see
// Proxy.Send). They are rare (an MCP session ended by warden, a refused
// server request answered), so they use a plain http.Client rather than
// the proxied path's connection pool.
type sideClient struct {
	spec   UpstreamSpec
	target *url.URL
	client *http.Client
}

// sideResponseLimit bounds what warden reads of the answer to its own
// request: it only needs the status.
const sideResponseLimit = 64 << 10

func newSideClient(s UpstreamSpec, target *url.URL, rt http.RoundTripper) *sideClient {
	if rt == nil {
		dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
		rt = &http.Transport{
			DialContext:           dialer.DialContext,
			TLSClientConfig:       s.TLSConfig,
			TLSHandshakeTimeout:   s.DialTimeout,
			ResponseHeaderTimeout: s.Timeout,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
			DisableCompression:    true,
		}
	}
	return &sideClient{spec: s, target: target, client: &http.Client{
		Transport: rt,
		// warden's own requests go where the route says, never elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Send makes a request of warden's own to route's upstream: method on the
// upstream URL that the client path in maps to, with header (nothing of
// the client's is added; the route's upstream credential is) and body. It
// returns the upstream's status; the response body is read (at most 64
// KiB) and discarded. It is for requests the client did not make and that
// policy already decided warden makes on its behalf: ending an MCP session
// upstream, answering a server request warden refused.
func (p *Proxy) Send(ctx context.Context, route string, in *url.URL, method string, header http.Header, body []byte) (int, error) {
	c, ok := p.side[route]
	if !ok {
		return 0, fmt.Errorf("gateway: no upstream for route %q", route)
	}
	if in == nil {
		return 0, errors.New("gateway: send: no path")
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, upstreamURL(c.spec, c.target, in).String(), rd)
	if err != nil {
		return 0, fmt.Errorf("gateway: send to route %q: %w", route, err)
	}
	for k, vs := range header {
		if isHopHeader(http.CanonicalHeaderKey(k)) {
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for _, h := range clientCredentialHeaders {
		req.Header.Del(h)
	}
	if c.spec.CredentialHeader != "" {
		req.Header.Set(c.spec.CredentialHeader, c.spec.CredentialValue)
	}
	res, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("gateway: send to route %q: %w", route, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, sideResponseLimit))
	_ = res.Body.Close()
	return res.StatusCode, nil
}
