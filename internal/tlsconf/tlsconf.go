// Package tlsconf builds the TLS configuration of warden's listeners and
// guarantees that a listener keeps serving the last certificate that loaded:
// files are reloaded when they change, and a renewed pair that does not load
// (garbage, mismatched key, already expired) leaves the previous one in
// service.
//
// Client certificates are requested but NOT verified by the TLS layer
// (client_auth "optional" is tls.RequestClientCert, "require" is
// tls.RequireAnyClientCert). The handshake still proves that the client holds
// the certificate's private key (CertificateVerify), but the chain is verified
// by the identity stage (package identity/mtls) against the SPIFFE trust
// bundles, at request time, so that a bad certificate — another trust
// domain, expired, no SPIFFE ID — is refused with a 401 and an audit record
// instead of a handshake failure that nobody sees. Only "require" without any
// certificate fails the handshake.
package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// Client-auth modes of a listener (listeners[].tls.client_auth).
const (
	ClientAuthNone     = "none"     // no client certificate is requested (also "")
	ClientAuthOptional = "optional" // requested; a client without one may still use a bearer credential
	ClientAuthRequire  = "require"  // a client without a certificate fails the handshake
)

// ParseClientAuth maps a client_auth mode to the TLS client-auth type.
// Unknown modes are an error, never a silent downgrade.
func ParseClientAuth(mode string) (tls.ClientAuthType, error) {
	switch mode {
	case "", ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthOptional:
		return tls.RequestClientCert, nil
	case ClientAuthRequire:
		return tls.RequireAnyClientCert, nil
	default:
		return tls.NoClientCert, fmt.Errorf("tlsconf: client_auth %q: want none, optional or require", mode)
	}
}

// ServerConfig returns a listener's TLS configuration: TLS 1.2 or later,
// ALPN h2 and http/1.1, the certificate from getCert (a CertReloader's or a
// Workload API source's GetCertificate) and the client-auth mode
// (listeners[].tls.client_auth; see the package doc for why client chains
// are not verified here).
func ServerConfig(clientAuth string, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*tls.Config, error) {
	if getCert == nil {
		return nil, errors.New("tlsconf: no certificate source")
	}
	ca, err := ParseClientAuth(clientAuth)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: getCert,
		ClientAuth:     ca,
	}, nil
}
