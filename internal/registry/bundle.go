package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// maxBundleBytes bounds a signature bundle.
const maxBundleBytes = 48 << 20

// Signer is a private signing key: ECDSA P-256 or Ed25519, from PEM. It
// implements sigstore-go's sign.Keypair, so bundles are built by
// sigstore-go itself.
type Signer struct {
	priv crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
}

// ParseSigner reads a PEM private key: PKCS #8 ("PRIVATE KEY") holding an
// ECDSA P-256 or Ed25519 key, or SEC 1 ("EC PRIVATE KEY") P-256.
// Encrypted keys are not supported.
func ParseSigner(pemBytes []byte) (*Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block in the private key file", ErrKey)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: encrypted private keys are not supported", ErrKey)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKey, clip(block.Type))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	var details protocommon.PublicKeyDetails
	var priv crypto.Signer
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA keys must be on P-256", ErrKey)
		}
		details, priv = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, k
	case ed25519.PrivateKey:
		details, priv = protocommon.PublicKeyDetails_PKIX_ED25519, k
	default:
		return nil, fmt.Errorf("%w: key type %T is not supported (ECDSA P-256 or Ed25519)", ErrKey, key)
	}
	alg, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	hint, err := keyHint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{priv: priv, alg: alg, hint: []byte(hint)}, nil
}

// keyHint is the bundle's public-key hint, as sigstore-go makes it:
// base64 of the SHA-256 of the PKIX DER public key.
func keyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// GetHashAlgorithm implements sign.Keypair.
func (s *Signer) GetHashAlgorithm() protocommon.HashAlgorithm { return s.alg.GetProtoHashType() }

// GetSigningAlgorithm implements sign.Keypair.
func (s *Signer) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return s.alg.GetSignatureAlgorithm()
}

// GetHint implements sign.Keypair.
func (s *Signer) GetHint() []byte { return s.hint }

// GetKeyAlgorithm implements sign.Keypair.
func (s *Signer) GetKeyAlgorithm() string {
	if s.alg.GetKeyType() == signature.ED25519 {
		return "ED25519"
	}
	return "ECDSA"
}

// GetPublicKey implements sign.Keypair.
func (s *Signer) GetPublicKey() crypto.PublicKey { return s.priv.Public() }

// GetPublicKeyPem implements sign.Keypair.
func (s *Signer) GetPublicKeyPem() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(s.priv.Public())
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SignData implements sign.Keypair: ECDSA signs the SHA-256 of data,
// Ed25519 signs data itself.
func (s *Signer) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := s.alg.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	sig, err := s.priv.Sign(rand.Reader, toSign, hf)
	if err != nil {
		return nil, nil, err
	}
	return sig, toSign, nil
}

// PublicKeyPEM returns the PEM of the signer's public key.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	p, err := s.GetPublicKeyPem()
	return []byte(p), err
}

var _ sign.Keypair = (*Signer)(nil)

// TrustedKey is a public key warden accepts signatures from, by name.
type TrustedKey struct {
	Name string
	hint string
	ver  signature.Verifier
}

// ParseTrustedKey reads a PEM public key ("PUBLIC KEY", PKIX): ECDSA P-256
// or Ed25519.
func ParseTrustedKey(name string, pemBytes []byte) (TrustedKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		return TrustedKey{}, fmt.Errorf("%w: key %s: want a PEM \"PUBLIC KEY\" block", ErrKey, name)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("%w: key %s: %v", ErrKey, name, err)
	}
	var ver signature.Verifier
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return TrustedKey{}, fmt.Errorf("%w: key %s: ECDSA keys must be on P-256", ErrKey, name)
		}
		ver, err = signature.LoadVerifier(k, crypto.SHA256)
	case ed25519.PublicKey:
		ver, err = signature.LoadVerifier(k, crypto.Hash(0))
	default:
		return TrustedKey{}, fmt.Errorf("%w: key %s: type %T is not supported (ECDSA P-256 or Ed25519)", ErrKey, name, pub)
	}
	if err != nil {
		return TrustedKey{}, fmt.Errorf("%w: key %s: %v", ErrKey, name, err)
	}
	hint, err := keyHint(pub)
	if err != nil {
		return TrustedKey{}, err
	}
	return TrustedKey{Name: name, hint: hint, ver: ver}, nil
}

// signStatement wraps the statement in a DSSE envelope signed by s and
// returns the Sigstore bundle (v0.3, public-key verification material, no
// transparency log entry) as JSON.
func signStatement(ctx context.Context, payload []byte, s *Signer) ([]byte, error) {
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, s, sign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("registry: sign: %w", err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("registry: sign: %w", err)
	}
	out, err := b.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("registry: sign: encode bundle: %w", err)
	}
	return out, nil
}

// parseBundle parses a bundle and checks that it is in the supported
// subset: a DSSE envelope with one signature over an in-toto payload,
// verified by a public key (no certificate).
func parseBundle(data []byte) (*bundle.Bundle, []byte, error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", ErrBundle)
	}
	if len(data) > maxBundleBytes {
		return nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrBundle, maxBundleBytes)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	if b.Bundle == nil || b.GetVerificationMaterial() == nil {
		return nil, nil, fmt.Errorf("%w: no verification material", ErrBundle)
	}
	if b.GetVerificationMaterial().GetPublicKey() == nil {
		return nil, nil, fmt.Errorf("%w: only public-key bundles are supported (no certificates or keyless signing)", ErrBundle)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, nil, fmt.Errorf("%w: no DSSE envelope (a message signature is not the model-signing format)", ErrBundle)
	}
	if env.GetPayloadType() != PayloadType {
		return nil, nil, fmt.Errorf("%w: DSSE payload type %q, want %q", ErrBundle, clip(env.GetPayloadType()), PayloadType)
	}
	if n := len(env.GetSignatures()); n != 1 {
		return nil, nil, fmt.Errorf("%w: want exactly one DSSE signature, got %d", ErrBundle, n)
	}
	return &b, env.GetPayload(), nil
}

// verifyBundle checks the bundle's signature with the trusted keys and
// returns the signed statement and the name of the key that verified it.
// A bundle whose hint names a trusted key is checked with that key; any
// other is tried with every trusted key (hints are not signed and other
// tools form them differently).
func verifyBundle(data []byte, keys []TrustedKey) (*Signed, string, error) {
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("%w: no trusted keys configured", ErrSignature)
	}
	b, payload, err := parseBundle(data)
	if err != nil {
		return nil, "", err
	}
	hint := b.GetVerificationMaterial().GetPublicKey().GetHint()
	candidates := keys
	for _, k := range keys {
		if k.hint == hint {
			candidates = []TrustedKey{k}
			break
		}
	}
	var errs []error
	for _, k := range candidates {
		if err := verifyWith(b, k, nil); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", k.Name, err))
			continue
		}
		signed, err := parseStatement(payload)
		if err != nil {
			return nil, "", err
		}
		return signed, k.Name, nil
	}
	return nil, "", fmt.Errorf("%w with any trusted key: %w", ErrSignature, errors.Join(errs...))
}

// verifyWith runs sigstore-go's verifier with the one key k. With digest
// set, the verifier also checks that the statement's subject has that
// SHA-256 digest.
func verifyWith(b *bundle.Bundle, k TrustedKey, digest []byte) error {
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(k.ver, time.Time{}, time.Time{}), nil
	})
	// A key-signed bundle without a transparency log entry or timestamp
	// carries no trusted time: WithNoObserverTimestamps is the only valid
	// time policy for it.
	v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return err
	}
	artifact := verify.WithoutArtifactUnsafe()
	if digest != nil {
		artifact = verify.WithArtifactDigest(hashSHA256, digest)
	}
	_, err = v.Verify(b, verify.NewPolicy(artifact, verify.WithKey()))
	return err
}

// SignOptions tune SignModel.
type SignOptions struct {
	// Name is the statement's subject name; default the directory's base name.
	Name string
	// Ignore are paths left out of the manifest; default DefaultIgnore.
	Ignore  []string
	Workers int
}

// SignModel hashes the model directory and returns the signature bundle
// (JSON) over its manifest.
func SignModel(ctx context.Context, dir string, s *Signer, opts SignOptions) ([]byte, *Manifest, error) {
	return signDir(ctx, dir, s, opts, ModelPredicateType, nil)
}

func signDir(ctx context.Context, dir string, s *Signer, opts SignOptions, predicateType string, prov *DatasetProvenance) ([]byte, *Manifest, error) {
	ignore := opts.Ignore
	if ignore == nil {
		ignore = DefaultIgnore
	}
	m, err := HashDir(ctx, dir, HashOptions{Ignore: ignore, Workers: opts.Workers})
	if err != nil {
		return nil, nil, err
	}
	if len(m.Files) == 0 {
		return nil, nil, fmt.Errorf("registry: %s holds no file to sign", dir)
	}
	payload, err := buildStatement(opts.Name, m, ignore, predicateType, prov)
	if err != nil {
		return nil, nil, err
	}
	out, err := signStatement(ctx, payload, s)
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}

// Verification is the outcome of a successful verification.
type Verification struct {
	Name       string    `json:"name"`        // the statement's subject name
	RootDigest string    `json:"root_digest"` // hex SHA-256 over the file digests
	Signer     string    `json:"signer"`      // the trusted key that verified the signature
	Files      int       `json:"files"`
	Bytes      int64     `json:"bytes"`
	Manifest   *Manifest `json:"-"`
	Signed     *Signed   `json:"-"`
}

// VerifyOptions tune VerifyModel.
type VerifyOptions struct {
	// Name, when set, must equal the statement's subject name: it keeps a
	// signature of one model from passing for another.
	Name    string
	Workers int
}

// VerifyModel verifies the bundle's signature with the trusted keys, then
// recomputes every file digest of dir and compares them with the signed
// manifest. Any difference is an *IntegrityError naming each changed,
// added and removed file.
func VerifyModel(ctx context.Context, dir string, bundleJSON []byte, keys []TrustedKey, opts VerifyOptions) (*Verification, error) {
	signed, signer, err := verifyBundle(bundleJSON, keys)
	if err != nil {
		return nil, err
	}
	if opts.Name != "" && signed.Name != opts.Name {
		return nil, fmt.Errorf("%w: the signature is for %q, not %q", ErrSignature, clip(signed.Name), opts.Name)
	}
	got, err := HashDir(ctx, dir, HashOptions{Ignore: signed.Ignore, Workers: opts.Workers})
	if err != nil {
		return nil, err
	}
	if err := Diff(signed.Manifest, got); err != nil {
		return nil, err
	}
	// Belt and braces: let sigstore-go itself check that the signed
	// subject digest is the digest of the files on disk.
	b, _, err := parseBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	rootDigest := got.RootDigest()
	raw, err := hex.DecodeString(rootDigest)
	if err != nil {
		return nil, fmt.Errorf("registry: root digest: %w", err)
	}
	k, ok := keyByName(keys, signer)
	if !ok {
		return nil, fmt.Errorf("%w: key %s vanished", ErrSignature, signer) // cannot happen: signer came from keys
	}
	if err := verifyWith(b, k, raw); err != nil {
		return nil, fmt.Errorf("%w: subject digest: %v", ErrSignature, err)
	}
	return &Verification{Name: signed.Name, RootDigest: rootDigest, Signer: signer, Files: len(got.Files),
		Bytes: got.TotalBytes(), Manifest: got, Signed: signed}, nil
}

// InspectBundle verifies only the signature of a bundle and returns what
// it signs; the files are not looked at.
func InspectBundle(bundleJSON []byte, keys []TrustedKey) (*Signed, string, error) {
	return verifyBundle(bundleJSON, keys)
}

func keyByName(keys []TrustedKey, name string) (TrustedKey, bool) {
	for _, k := range keys {
		if k.Name == name && k.ver != nil {
			return k, true
		}
	}
	return TrustedKey{}, false
}
