package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/warden-ai/warden/internal/config"
)

// selfSignedValidity is how long a generated certificate is valid. It is
// regenerated at every start, so it never needs to outlive the process by much.
const selfSignedValidity = 7 * 24 * time.Hour

// SelfSigned is a certificate generated at start for a listener without certificate files.
type SelfSigned struct {
	Cert    tls.Certificate
	CertPEM []byte // for clients that must trust it (the demo, tests)
}

// newSelfSigned generates an ECDSA P-256 certificate for localhost, the
// loopback addresses and the host name.
func newSelfSigned(now time.Time) (*SelfSigned, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("self-signed: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("self-signed: serial: %w", err)
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "warden self-signed", Organization: []string{"warden (NOT FOR PRODUCTION)"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so clients can trust it directly as its own root
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-signed: parse: %w", err)
	}
	return &SelfSigned{
		Cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// listenerTLS returns the TLS config for a listener, nil for mode off.
func listenerTLS(l config.Listener, self *SelfSigned) (*tls.Config, error) {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	switch l.TLS.Mode {
	case config.TLSModeOff:
		return nil, nil
	case config.TLSModeSelfSigned:
		base.Certificates = []tls.Certificate{self.Cert}
		return base, nil
	case config.TLSModeFiles:
		cert, err := tls.LoadX509KeyPair(l.TLS.CertFile, l.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("listener %q: tls: %w", l.Name, err)
		}
		base.Certificates = []tls.Certificate{cert}
		return base, nil
	default:
		return nil, fmt.Errorf("listener %q: unknown tls mode %q", l.Name, l.TLS.Mode)
	}
}
