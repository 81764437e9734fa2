package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// This file captures the fingerprint of the client software that opened a
// TLS connection — a hash of its ClientHello — once per connection, for the
// behaviour stage: a stolen credential is used from the attacker's client,
// a travelling user keeps their own.
//
// FingerprintListener wraps the TCP listener under the TLS listener, so
// that the ClientHello callback can find the connection it belongs to;
// ConnContext puts that connection in the connection's context; an
// exchange reads it with ClientHello. Per connection that is one small
// object and one context value; per request, one context lookup, and only
// by the stages that ask.

// helloConn is a TCP connection whose TLS ClientHello fingerprint is
// recorded by the handshake.
type helloConn struct {
	net.Conn
	hello atomic.Uint64 // 0: no handshake yet
}

type helloListener struct{ net.Listener }

func (l helloListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &helloConn{Conn: c}, nil
}

type helloKey struct{}

// FingerprintListener returns ln wrapped so that, once cfg (the TLS
// configuration of the tls.NewListener to be put over it) has seen a
// connection's ClientHello, its fingerprint is available to the exchanges
// of that connection (ConnContext, Exchange.ClientHello). It sets
// cfg.GetConfigForClient, keeping a previous one.
func FingerprintListener(ln net.Listener, cfg *tls.Config) net.Listener {
	prev := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if c, ok := h.Conn.(*helloConn); ok {
			c.hello.Store(HelloFingerprint(h))
		}
		if prev != nil {
			return prev(h)
		}
		return nil, nil
	}
	return helloListener{ln}
}

// ConnContext is the http.Server's ConnContext of a listener made with
// FingerprintListener: it keeps the connection in its context, for
// Exchange.ClientHello.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if hc, ok := tc.NetConn().(*helloConn); ok {
			return context.WithValue(ctx, helloKey{}, hc)
		}
	}
	return ctx
}

// ClientHello returns the fingerprint of the TLS ClientHello of the
// exchange's connection (HelloFingerprint), 0 when there is none: a
// plaintext listener, a listener not made with FingerprintListener, or an
// exchange without a request.
func (ex *Exchange) ClientHello() uint64 {
	if ex == nil || ex.Request == nil {
		return 0
	}
	if hc, ok := ex.Request.Context().Value(helloKey{}).(*helloConn); ok {
		return hc.hello.Load()
	}
	return 0
}

// HelloFingerprint hashes what a ClientHello says about the client
// software, in the spirit of JA3/JA4: the TLS versions, cipher suites,
// supported groups, point formats, signature schemes and ALPN protocols in
// the client's order, and the set of extensions in any order (browsers
// permute them per connection). GREASE values are skipped, and so are the
// extensions whose presence depends on the connection rather than the
// software: server name (absent when dialling an address), padding (which
// depends on the hello's length), pre-shared key, early data and cookie
// (session resumption, retries). Never 0.
func HelloFingerprint(h *tls.ClientHelloInfo) uint64 {
	const (
		sep   = 0x9E3779B97F4A7C15
		prime = 0x100000001B3
	)
	x := uint64(0xCBF29CE484222325)
	add := func(v uint64) { x = (x ^ v) * prime; x ^= x >> 29 }
	for _, v := range h.SupportedVersions {
		if !grease(v) {
			add(uint64(v))
		}
	}
	add(sep)
	for _, v := range h.CipherSuites {
		if !grease(v) {
			add(uint64(v))
		}
	}
	add(sep)
	for _, v := range h.SupportedCurves {
		if !grease(uint16(v)) {
			add(uint64(v))
		}
	}
	add(sep)
	for _, v := range h.SupportedPoints {
		add(uint64(v))
	}
	add(sep)
	for _, v := range h.SignatureSchemes {
		add(uint64(v))
	}
	add(sep)
	for _, p := range h.SupportedProtos {
		for i := 0; i < len(p); i++ {
			add(uint64(p[i]))
		}
		add(sep)
	}
	// Extensions: an order-independent sum of mixed ids.
	var ext uint64
	for _, v := range h.Extensions {
		switch {
		case grease(v), v == 0, v == 21, v == 41, v == 42, v == 44:
			continue
		}
		ext += mix(uint64(v) + sep)
	}
	add(ext)
	if x = mix(x); x == 0 {
		x = 1
	}
	return x
}

// grease reports whether v is a GREASE value (RFC 8701): 0x?A?A with equal
// bytes.
func grease(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// mix is a 64-bit finalizer (splitmix64).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}
