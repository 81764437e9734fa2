package assess

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/warden-ai/warden/internal/config"
)

// testNow is the fixed clock of the posture tests.
var testNow = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// issuer is a posture service in a test: its keys and a JWKS file of their
// public halves.
type issuer struct {
	ed     ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
	jwks   string // path of the JWKS file
	edKID  string
	ecKID  string
	pubRaw []byte // the Ed25519 public key bytes (for the HMAC confusion attack)
	jwksB  []byte // the JWKS file contents
}

func newIssuer(t testing.TB, dir string) *issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{ed: priv, ec: ec, edKID: "ed-1", ecKID: "ec-1", pubRaw: pub, jwks: filepath.Join(dir, "posture-jwks.json")}
	is.jwksB = jwksOf(t,
		jose.JSONWebKey{Key: pub, KeyID: is.edKID, Algorithm: "EdDSA", Use: "sig"},
		jose.JSONWebKey{Key: &ec.PublicKey, KeyID: is.ecKID, Algorithm: "ES256", Use: "sig"})
	writeFile(t, is.jwks, is.jwksB)
	return is
}

func jwksOf(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := writeFileErr(path, data); err != nil {
		t.Fatal(err)
	}
}

// writeFileErr writes beside path and renames, as an operator's tooling would.
func writeFileErr(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// claims returns valid claims for sub at testNow.
func claims(sub string) map[string]any {
	return map[string]any{
		"sub": sub, "aud": "warden",
		"iat": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(5 * time.Minute).Unix(),
		"posture": map[string]any{"managed": true, "os": map[string]any{"name": "macOS", "version": "15.5"}, "disk_encrypted": true},
	}
}

// sign signs v (marshalled to JSON unless it is []byte) as a compact JWS.
func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, v any) string {
	t.Helper()
	payload, ok := v.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds an alg "none" token (RFC 7519 §6).
func unsigned(t testing.TB, v any) string {
	t.Helper()
	payload, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func postureConfig(jwks string) config.Posture {
	return config.Posture{
		Header: config.DefaultPostureHeader, JWKSFile: jwks, Audience: config.DefaultPostureAudience,
		MaxAge: config.DefaultPostureMaxAge, ClockSkew: config.DefaultPostureClockSkew,
	}
}

// geoRecord is one network of a generated test database.
type geoRecord struct {
	cidr string
	data mmdbtype.Map
}

func cityData(country, city string) mmdbtype.Map {
	m := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(country)}}
	if city != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city), "de": mmdbtype.String(city + "-de")}}
	}
	return m
}

func asnData(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

// mmdbBytes generates a MaxMind DB with the records. Documentation ranges
// are used, so reserved networks must be allowed.
func mmdbBytes(t testing.TB, dbType string, recs ...geoRecord) []byte {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType, Description: map[string]string{"en": "warden test database"}, Languages: []string{"en", "de"},
		IncludeReservedNetworks: true, RecordSize: 24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		_, n, err := net.ParseCIDR(r.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, r.data); err != nil {
			t.Fatalf("insert %s: %v", r.cidr, err)
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "db-*.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeMMDB(t testing.TB, path, dbType string, recs ...geoRecord) {
	t.Helper()
	writeFile(t, path, mmdbBytes(t, dbType, recs...))
}
