package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t testing.TB, ed bool) (*Signer, TrustedKey) {
	t.Helper()
	var priv, pub any
	if ed {
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, p
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ParseTrustedKey("k", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
	if err != nil {
		t.Fatal(err)
	}
	return s, tk
}

func writeModel(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var baseModel = map[string]string{"weights.bin": strings.Repeat("w", 10000), "config.json": `{"a":1}`, "tok/vocab.txt": "a\nb\n"}

// signedModel returns a model directory with its bundle written as model.sig.
func signedModel(t testing.TB, s *Signer, name string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	writeModel(t, dir, baseModel)
	b, _, err := SignModel(context.Background(), dir, s, SignOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// rewrap re-signs a modified statement with s (to test checks that come
// after a valid signature).
func rewrap(t *testing.T, s *Signer, bundleJSON []byte, edit func(st map[string]any)) []byte {
	t.Helper()
	_, payload, err := parseBundle(bundleJSON)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	p, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	out, err := signStatement(context.Background(), p, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, ed := range []bool{false, true} {
		s, k := newKey(t, ed)
		dir, b := signedModel(t, s, "llama")
		v, err := VerifyModel(context.Background(), dir, b, []TrustedKey{k}, VerifyOptions{Name: "llama"})
		if err != nil {
			t.Fatalf("ed25519=%v: %v", ed, err)
		}
		if v.Files != 3 || v.Name != "llama" || v.Signer != "k" {
			t.Fatalf("verification %+v", v)
		}
	}
}

// TestBadInput is the table of bad input: each is refused with an
// error that says what is wrong.
func TestBadInput(t *testing.T) {
	s, k := newKey(t, false)
	_, other := newKey(t, true)
	ctx := context.Background()
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey)
		is      error
		want    string
	}{
		{"one changed byte", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			p := filepath.Join(dir, "weights.bin")
			data, _ := os.ReadFile(p)
			data[5000] ^= 1
			writeModel(t, dir, map[string]string{"weights.bin": string(data)})
			return b, []TrustedKey{k}
		}, ErrIntegrity, `changed "weights.bin"`},
		{"file added", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			writeModel(t, dir, map[string]string{"tok/extra.txt": "x"})
			return b, []TrustedKey{k}
		}, ErrIntegrity, `added "tok/extra.txt"`},
		{"file removed", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
			return b, []TrustedKey{k}
		}, ErrIntegrity, `removed "config.json"`},
		{"signature swapped between models", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			other := t.TempDir()
			writeModel(t, other, map[string]string{"weights.bin": "other model", "config.json": "{}"})
			ob, _, err := SignModel(ctx, other, s, SignOptions{Name: "mistral"})
			if err != nil {
				t.Fatal(err)
			}
			return ob, []TrustedKey{k}
		}, ErrSignature, `the signature is for "mistral", not "llama"`},
		{"wrong key", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return b, []TrustedKey{other}
		}, ErrSignature, "signature does not verify"},
		{"truncated bundle", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return b[:len(b)/2], []TrustedKey{k}
		}, ErrBundle, "malformed signature bundle"},
		{"malformed bundle", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), []TrustedKey{k}
		}, ErrBundle, "malformed signature bundle"},
		{"empty bundle", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return nil, []TrustedKey{k}
		}, ErrBundle, "empty"},
		{"payload altered after signing", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			env := m["dsseEnvelope"].(map[string]any)
			payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
			env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), "llama", "llamb", 1)))
			out, _ := json.Marshal(m)
			return out, []TrustedKey{k}
		}, ErrSignature, "signature does not verify"},
		{"path traversal in manifest", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return rewrapResource(t, s, b, "../../etc/passwd"), []TrustedKey{k}
		}, ErrPath, "leads out of the model directory"},
		{"absolute path in manifest", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return rewrapResource(t, s, b, "/etc/passwd"), []TrustedKey{k}
		}, ErrPath, "absolute path"},
		{"unsupported shard serialization", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return rewrap(t, s, b, func(st map[string]any) {
				st["predicate"].(map[string]any)["serialization"].(map[string]any)["method"] = "shards"
			}), []TrustedKey{k}
		}, ErrBundle, "shards are not supported"},
		{"inconsistent subject digest", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			return rewrap(t, s, b, func(st map[string]any) {
				st["subject"].([]any)[0].(map[string]any)["digest"] = map[string]any{"sha256": strings.Repeat("0", 64)}
			}), []TrustedKey{k}
		}, ErrBundle, "inconsistent"},
		{"symlink out of the model directory", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			if err := os.Symlink("/etc/hostname", filepath.Join(dir, "tok", "escape")); err != nil {
				t.Fatal(err)
			}
			return b, []TrustedKey{k}
		}, ErrPath, `symlink "tok/escape" leads out of the model directory`},
		{"symlink to a parent directory", func(t *testing.T, dir string, b []byte) ([]byte, []TrustedKey) {
			if err := os.Symlink("../..", filepath.Join(dir, "tok", "up")); err != nil {
				t.Fatal(err)
			}
			return b, []TrustedKey{k}
		}, ErrPath, "leads out of the model directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, b := signedModel(t, s, "llama")
			bundle, keys := tc.prepare(t, dir, b)
			_, err := VerifyModel(ctx, dir, bundle, keys, VerifyOptions{Name: "llama"})
			if err == nil {
				t.Fatal("verified")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
}

func rewrapResource(t *testing.T, s *Signer, b []byte, name string) []byte {
	return rewrap(t, s, b, func(st map[string]any) {
		res := st["predicate"].(map[string]any)["resources"].([]any)
		res[0].(map[string]any)["name"] = name
	})
}

func TestCleanPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a": true, "a/b.bin": true, "": false, "/a": false, "../a": false, "a/../b": false, "a//b": false,
		"./a": false, "a/": false, `a\b`: false, "C:x": false, "a\nb": false, "\xff": false,
	} {
		if _, err := CleanPath(p); (err == nil) != ok {
			t.Errorf("CleanPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	s, k := newKey(f, false)
	dir := f.TempDir()
	writeModel(f, dir, baseModel)
	b, _, err := SignModel(context.Background(), dir, s, SignOptions{Name: "llama"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = verifyBundle(data, []TrustedKey{k})
	})
}

func FuzzParseStatement(f *testing.F) {
	m := &Manifest{Files: []FileDigest{{Path: "a", SHA256: strings.Repeat("a", 64)}}}
	st, _ := buildStatement("x", m, nil, ModelPredicateType, nil)
	f.Add(st)
	ds, _ := buildStatement("x@1", m, nil, DatasetPredicateType, &DatasetProvenance{Name: "x", Version: "1"})
	f.Add(ds)
	f.Fuzz(func(t *testing.T, data []byte) {
		signed, err := parseStatement(data)
		if err == nil && signed.Manifest.RootDigest() != signed.RootDigest {
			t.Fatal("accepted an inconsistent statement")
		}
	})
}

func TestStoreLifecycle(t *testing.T) {
	s, k := newKey(t, false)
	root := t.TempDir()
	mk := func(v string) (string, []byte) {
		dir := filepath.Join(root, v)
		writeModel(t, dir, map[string]string{"weights.bin": "weights " + v})
		b, _, err := SignModel(context.Background(), dir, s, SignOptions{Name: "llama"})
		if err != nil {
			t.Fatal(err)
		}
		return dir, b
	}
	var events []Event
	st, err := Open(t.TempDir(), Options{Keys: []TrustedKey{k}, Roots: []string{root},
		Audit: func(_ context.Context, ev Event) error { events = append(events, ev); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	approver := Actor{ID: "ann", Roles: []string{DefaultApproverRole}}
	d1, b1 := mk("v1")
	d2, b2 := mk("v2")
	for _, r := range []RegisterRequest{{Name: "llama", Version: "v1", Dir: d1, Bundle: b1}, {Name: "llama", Version: "v2", Dir: d2, Bundle: b2}} {
		mv, err := st.Register(ctx, r, Actor{ID: "pat"})
		if err != nil || mv.State != StateVerified {
			t.Fatalf("register %s: %v %+v", r.Version, err, mv)
		}
	}
	if _, err := st.Register(ctx, RegisterRequest{Name: "llama", Version: "v1", Dir: d1, Bundle: b1}, Actor{ID: "pat"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("re-register: %v", err)
	}
	if _, err := st.Register(ctx, RegisterRequest{Name: "llama", Version: "v9", Dir: "/etc", Bundle: b1}, Actor{ID: "pat"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("outside the roots: %v", err)
	}
	if _, err := st.Servable("llama"); !errors.Is(err, ErrNotServable) {
		t.Fatalf("servable before promotion: %v", err)
	}
	if _, err := st.Promote(ctx, "llama", "v1", Actor{ID: "pat"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("promote without the role: %v", err)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := st.Promote(ctx, "llama", v, approver); err != nil {
			t.Fatal(err)
		}
	}
	if sv, err := st.Servable("llama"); err != nil || sv.Version != "v2" {
		t.Fatalf("servable: %+v %v", sv, err)
	}
	// Tamper with v2: the re-check stops it; rollback serves v1.
	writeModel(t, d2, map[string]string{"weights.bin": "weights v3"})
	st.Recheck(ctx)
	if _, err := st.Servable("llama"); !errors.Is(err, ErrNotServable) || !strings.Contains(err.Error(), `changed "weights.bin"`) {
		t.Fatalf("servable after tampering: %v", err)
	}
	if _, err := st.Rollback(ctx, "llama", Actor{ID: "warden:respond", System: true}, "anomaly"); err != nil {
		t.Fatal(err)
	}
	if sv, err := st.Servable("llama"); err != nil || sv.Version != "v1" {
		t.Fatalf("servable after rollback: %+v %v", sv, err)
	}
	// Rolling back again: v2 is tampered, so it is refused.
	if _, err := st.Rollback(ctx, "llama", approver, ""); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("rollback to a tampered version: %v", err)
	}
	// A second process sees the same state.
	m, err := st.Model("llama")
	if err != nil || len(m.History) == 0 {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		actions = append(actions, fmt.Sprintf("%s:%s->%s:%v", ev.Action, ev.From, ev.To, ev.OK))
	}
	for _, want := range []string{"model.register:->staged:true", "model.verify:staged->verified:true",
		"model.promote:verified->active:true", "model.promote:active->retired:true",
		"model.integrity:active->active:false", "model.rollback:retired->active:true", "model.rollback:retired->retired:false"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("no event %s in %v", want, actions)
		}
	}
}

func TestStoreAuditFailureChangesNothing(t *testing.T) {
	s, k := newKey(t, false)
	root := t.TempDir()
	dir := filepath.Join(root, "v1")
	writeModel(t, dir, baseModel)
	b, _, err := SignModel(context.Background(), dir, s, SignOptions{Name: "llama"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.TempDir(), Options{Keys: []TrustedKey{k}, Roots: []string{root},
		Audit: func(context.Context, Event) error { return errors.New("audit down") }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Register(context.Background(), RegisterRequest{Name: "llama", Version: "v1", Dir: dir, Bundle: b}, Actor{ID: "p"}); err == nil {
		t.Fatal("registered without an audit record")
	}
	if len(st.Models()) != 0 {
		t.Fatal("state changed without an audit record")
	}
}

func TestDatasetChain(t *testing.T) {
	s, k := newKey(t, false)
	ctx := context.Background()
	sigs := map[string][]byte{}
	var prev *Signed
	var last string
	for i, v := range []string{"raw", "clean", "dedup"} {
		dir := filepath.Join(t.TempDir(), v)
		writeModel(t, dir, map[string]string{"data.jsonl": "rows of " + v})
		prov := DatasetProvenance{Name: "corpus", Version: v, Source: "crawl-2025", License: "CC-BY-4.0"}
		if i > 0 {
			prov.Parent, prov.ParentDigest, prov.Transformation = prev.Name[len("corpus@"):], prev.RootDigest, "step "+v
		}
		b, _, err := SignDataset(ctx, dir, s, prov, SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sigs[v] = b
		prev, _, err = InspectBundle(b, []TrustedKey{k})
		if err != nil {
			t.Fatal(err)
		}
		last = dir
	}
	lookup := func(v string) ([]byte, error) { return sigs[v], nil }
	chain, err := VerifyDatasetChain(ctx, last, sigs["dedup"], []TrustedKey{k}, lookup)
	if err != nil || len(chain) != 3 || chain[2].Version != "raw" || chain[2].Parent != "" {
		t.Fatalf("chain %+v: %v", chain, err)
	}
	// Replace the middle version by another signed one: the first broken link is "clean".
	other := t.TempDir()
	writeModel(t, other, map[string]string{"data.jsonl": "poisoned"})
	forged, _, err := SignDataset(ctx, other, s, DatasetProvenance{Name: "corpus", Version: "clean", Parent: "raw",
		ParentDigest: chain[2].RootDigest, Transformation: "x"}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := func(v string) ([]byte, error) {
		if v == "clean" {
			return forged, nil
		}
		return sigs[v], nil
	}
	_, err = VerifyDatasetChain(ctx, last, sigs["dedup"], []TrustedKey{k}, bad)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Version != "clean" || !strings.Contains(err.Error(), "altered or replaced") {
		t.Fatalf("forged parent: %v", err)
	}
	// A missing origin.
	missing := func(v string) ([]byte, error) {
		if v == "raw" {
			return nil, nil
		}
		return sigs[v], nil
	}
	if _, err := VerifyDatasetChain(ctx, last, sigs["dedup"], []TrustedKey{k}, missing); !errors.As(err, &ce) || ce.Version != "raw" {
		t.Fatalf("missing origin: %v", err)
	}
}

// BenchmarkHashDir measures digest verification throughput over a
// multi-file model from the page cache: 8 files of 128 MiB (1 GiB).
// Run: go test ./internal/registry -run '^$' -bench HashDir -benchtime 5x
func BenchmarkHashDir(b *testing.B) {
	dir := b.TempDir()
	chunk := make([]byte, 1<<20)
	_, _ = rand.Read(chunk)
	const files, mib = 8, 128
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("shard-%02d.safetensors", i)))
		if err != nil {
			b.Fatal(err)
		}
		for range mib {
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
	// Warm the page cache.
	if _, err := HashDir(context.Background(), dir, HashOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(files * mib << 20)
	b.ResetTimer()
	for b.Loop() {
		if _, err := HashDir(context.Background(), dir, HashOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
