package assess

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzPostureVerify feeds arbitrary assertions to the verifier. The key is
// derived from a fixed seed, so that committed inputs stay reproducible.
// Whatever the input, Verify must not panic, every refusal must wrap
// ErrInvalidPosture (no input is a fault), and anything accepted must carry
// exactly the posture the key's holder signed for the principal.
func FuzzPostureVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	dir := f.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "EdDSA"}}})
	if err != nil {
		f.Fatal(err)
	}
	writeFileF(f, jwks, b)
	v, err := NewPostureVerifier(postureConfig(jwks), nil)
	if err != nil {
		f.Fatal(err)
	}
	const sub = "svc"
	signed := map[string]any{"managed": true, "os": map[string]any{"name": "macOS", "version": "15.5"}, "disk_encrypted": true}

	signF := func(payload []byte) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			f.Fatal(err)
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			f.Fatal(err)
		}
		s, err := jws.CompactSerialize()
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	c := claims(sub)
	valid, err := json.Marshal(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signF(valid))
	f.Add(signF([]byte(`{"sub":"svc","aud":["warden"],"exp":1748858700,"iat":1748858340,"posture":{"a":[[[[[1]]]]]}}`)))
	f.Add(signF([]byte(`{"sub":"svc","sub":"svc"}`)))
	f.Add(signF([]byte(`{}`)))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJFZERTQSIsImNyaXQiOlsiYjY0Il0sImI2NCI6ZmFsc2V9..")
	f.Add("..")
	f.Add("")
	f.Add(strings.Repeat("A", MaxPostureTokenBytes+1))

	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(token, sub, testNow)
		if err != nil {
			if !errors.Is(err, ErrInvalidPosture) {
				t.Fatalf("input made a fault, not a refusal: %v", err)
			}
			if got != nil {
				t.Fatal("posture with an error")
			}
			return
		}
		if !reflect.DeepEqual(got, signed) {
			t.Fatalf("accepted posture %v was never signed", got)
		}
	})
}

func writeFileF(f *testing.F, path string, data []byte) {
	f.Helper()
	if err := writeFileErr(path, data); err != nil {
		f.Fatal(err)
	}
}

// FuzzCheckJSONObject checks the structure checker against encoding/json:
// whatever it accepts is one valid JSON object that decodes into a map,
// within the depth, with no duplicate names.
func FuzzCheckJSONObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":{"b":[1,2,{"c":null}]}}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`,
		`[1]`, `{"a":1} {}`, `{"a":1}x`, `{"a":[[[[[[1]]]]]]}`, `{"a":"\u00e9","\u0061":2}`, `{"a"`, ` {"a":true} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const depth = 4
		if err := checkJSONObject(data, depth); err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil || m == nil {
			t.Fatalf("accepted %q, which does not decode into an object: %v", data, err)
		}
		if d := depthOf(m); d > depth {
			t.Fatalf("accepted depth %d > %d: %q", d, depth, data)
		}
	})
}

func depthOf(x any) int {
	switch t := x.(type) {
	case map[string]any:
		d := 0
		for _, v := range t {
			d = max(d, depthOf(v))
		}
		return d + 1
	case []any:
		d := 0
		for _, v := range t {
			d = max(d, depthOf(v))
		}
		return d + 1
	}
	return 0
}

func TestCheckJSONObject(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{`{}`, ""},
		{` {"a":{"b":[1,null,"x"]}} `, ""},
		{`{"a":[[1]]}`, ""},
		{`{"a":{"b":{"c":1}}}`, ""},
		{`{"a":{"b":{"c":{}}}}`, "levels deep"},
		{`{"a":{"b":[{}]}}`, "levels deep"},
		{`{"a":[[[1]]]}`, "levels deep"},
		{`{"a":1,"a":2}`, "duplicate"},
		{`{"a":{"b":1,"b":2}}`, "duplicate"},
		{`{"a":"x","\u0061":"y"}`, "duplicate"}, // same name after unescaping
		{`{"a":{"b":1},"c":{"b":2}}`, ""},       // same name in different objects
		{`[]`, "not a JSON object"},
		{`"x"`, "not a JSON object"},
		{`{"a":1}{}`, "after the JSON object"},
		{`{"a":1`, "not JSON"},
		{``, "not JSON"},
		{`{"a":tru}`, "not JSON"},
	}
	for _, tt := range tests {
		err := checkJSONObject([]byte(tt.in), 3)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}
