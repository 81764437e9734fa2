package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// treeOf is a tree of n records with a hash derived from n.
func treeOf(n int64) tlog.Tree {
	return tlog.Tree{N: n, Hash: tlog.RecordHash([]byte{byte(n)})}
}

func FuzzParseRecord(f *testing.F) {
	r := sampleRecord(1)
	r.Index = 1
	body, _ := encodeBody(nil, r)
	b := appendRecord(nil, 1, body)
	f.Add(b)
	f.Add([]byte(`{"index":0}`))
	f.Add([]byte(`{"index":1,"decision":{"obligations":{"a":1e999}}}`))
	f.Add([]byte(`{"index":1,"index":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			return
		}
		if idx, err := storedIndex(data); err != nil || idx != r.Index {
			t.Fatalf("accepted a record whose index field is %d, %v; parsed %d", idx, err, r.Index)
		}
	})
}

func FuzzParseFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte(`{"index":0}`)))
	f.Add(appendFrame(appendFrame(nil, []byte("a")), []byte("b")))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 'x'})
	f.Add(make([]byte, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, n, err := parseFrame(data)
		if err != nil {
			if !errors.Is(err, errFrameShort) && !errors.Is(err, errFrameBad) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n != frameHeaderLen+len(p) || n > len(data) || len(p) == 0 {
			t.Fatalf("frame of %d bytes with a %d-byte payload from %d bytes", n, len(p), len(data))
		}
		if !bytes.Equal(appendFrame(nil, p), data[:n]) {
			t.Fatal("an accepted frame does not re-encode to itself")
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	k, other := keys(f)
	good, _ := k.sign(testOrigin, treeOf(7))
	forged, _ := other.sign(testOrigin, treeOf(7))
	f.Add(good)
	f.Add(forged)
	f.Add(bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1))
	f.Add([]byte("test/audit\n1\nAAAA\n\n— test/audit AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := OpenCheckpoint(data, k.Verifier())
		if err != nil {
			var ce *CheckpointError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *CheckpointError: %v", err)
			}
			return
		}
		// Only what the key signed opens: the signed text re-formats to
		// the same checkpoint.
		again, err := k.sign(cp.Origin, cp.Tree)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := OpenCheckpoint(again, k.Verifier()); err != nil || c2.Tree != cp.Tree || c2.Origin != cp.Origin {
			t.Fatalf("re-signed checkpoint differs: %v", err)
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "k")
	if _, _, err := LoadOrCreateKey(path, "fuzz/key"); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add([]byte("PRIVATE+KEY+a+00000000+AA\na+00000000+AA\n"))
	f.Add([]byte("# only a comment\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		// An accepted key signs what its verifier accepts.
		signed, err := k.sign("fuzz/key", treeOf(1))
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		if _, err := OpenCheckpoint(signed, k.Verifier()); err != nil {
			t.Fatalf("the key's own checkpoint does not open: %v", err)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"segments":[{"name":"` + segName(0) + `","first":0,"count":3,"sha256":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}]}`))
	f.Add([]byte(`{"version":1,"segments":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			return
		}
		var next int64
		for _, s := range m.Segments {
			if s.First != next || s.Count <= 0 || s.Name != segName(s.First) {
				t.Fatalf("accepted a non-contiguous manifest: %+v", m)
			}
			next += s.Count
		}
		if m.next() != next {
			t.Fatalf("next %d, want %d", m.next(), next)
		}
	})
}

// FuzzOpenLog writes fuzzed bytes as the active segment, the hashes file
// and the checkpoints file of a real log and opens it for reading and for
// writing, then verifies it: nothing panics, errors are typed, and a log
// that opens for writing is one Verify accepts or reports precisely.
func FuzzOpenLog(f *testing.F) {
	src := writeLog(f, 5, Options{CheckpointEvery: 2})
	seg, _ := os.ReadFile(filepath.Join(src, segName(0)))
	hashes, _ := os.ReadFile(filepath.Join(src, hashesFile))
	ckpts, _ := os.ReadFile(filepath.Join(src, checkpointsFile))
	f.Add(seg, hashes, ckpts)
	f.Add(seg[:len(seg)-7], hashes, ckpts)
	f.Add(seg, hashes[:len(hashes)-33], ckpts)
	f.Add(seg, hashes, ckpts[:len(ckpts)-5])
	f.Add(append(bytes.Clone(seg), 0, 0, 0, 9, 1, 2, 3, 4, 'x'), hashes, ckpts)
	k, _ := keys(f)
	f.Fuzz(func(t *testing.T, seg, hashes, ckpts []byte) {
		dir := copyDir(t, src)
		for name, data := range map[string][]byte{segName(0): seg, hashesFile: hashes, checkpointsFile: ckpts} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true}); err == nil {
			_, verr := VerifyBackend(context.Background(), b, VerifyOptions{Verifier: k.Verifier()})
			checkVerifyErr(t, verr)
			b.Close()
		}
		l, err := Open(dir, testOptions(t, Options{}))
		if err != nil {
			return
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close of a log that opened: %v", err)
		}
		// What opened for writing (after its repairs) verifies.
		if _, err := verify(t, dir); err != nil {
			t.Fatalf("a log that opened does not verify: %v", err)
		}
	})
}

func checkVerifyErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ve *VerifyError
	var ce *CheckpointError
	if !errors.As(err, &ve) && !errors.As(err, &ce) {
		t.Fatalf("verify error is neither a *VerifyError nor a *CheckpointError: %v", err)
	}
}

// FuzzEncodeRecord holds the hand-written encoder to encoding/json: the
// stored form of a record is its json.Marshal encoding, byte for byte.
func FuzzEncodeRecord(f *testing.F) {
	f.Add("req-1", "agent", "<b>&\u2028\x00\xff", "route", "policy\"v1\\", int64(42), 12.5, 1e-7, true, 3)
	f.Add("", "", "", "", "", int64(0), 0.0, 0.0, false, 0)
	f.Add("\t\n\r\b\f", "é", "\u2029", "x", "y", int64(-1), 1e21, math.Copysign(0, -1), true, 7)
	f.Fuzz(func(t *testing.T, s1, s2, s3, s4, s5 string, n int64, f1, f2 float64, flag bool, shape int) {
		r := &Record{Index: n, Time: time.Unix(n%1e10, n%1e9).UTC(), RequestID: s1, Method: s2, Path: s3,
			Status: int(n % 1000), Code: s4, Reason: s5, LatencyMS: f1, UpstreamMS: f2, Stream: flag,
			BytesIn: n, BytesOut: -n, Action: s3, Upstream: s4, UpstreamStatus: int(n % 7), BodySHA256: s2}
		if shape&1 != 0 {
			r.Principal = &Principal{Kind: s1, ID: s2, OnBehalfOf: s3, AuthMethod: s4, CredentialID: s5, MFA: flag, Workload: s1, Issuer: s2}
			r.Resource = &Resource{Route: s1, Segment: s2, Model: s3, Tool: s4, API: s5}
		}
		if shape&2 != 0 {
			r.Decision = &Decision{Allow: flag, Reasons: []string{s1, s2}, PolicyVersion: s3,
				Obligations: map[string]any{s4: s5, "n": f1, "nested": map[string]any{s1: []any{s2, n, int(n), f2, flag, nil}},
					"nil": nil, "nilslice": []any(nil), "nilmap": map[string]any(nil), "num": json.Number("12.50"),
					"deep": deepValue(shape, s3), "other": []string{s1}}}
			r.Obligations = &Obligations{Applied: []string{s5}, AuditLevel: s1, MaxTokens: n, RateClass: s2, Mask: map[string]string{s3: s4, s1: s2}}
		}
		if shape&4 != 0 {
			r.Findings = []Finding{{Guard: s1, Type: s2, Class: s3, Where: s4, Start: n, End: n + 1, Score: f2, Action: s5}}
			r.Grants = []string{s1, s3}
			r.Usage = &Usage{PromptTokens: n, CompletionTokens: n / 2, Reported: flag}
			r.Full = &Full{RequestHeaders: []string{s2}, ResponseSHA256: s3}
			r.Truncated = []string{s4}
		}
		if shape&8 != 0 {
			r.Obligations = &Obligations{}
			r.Resource = &Resource{}
			r.Full = &Full{}
		}
		want, werr := json.Marshal(r)
		got, gerr := appendJSON(nil, r)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("json.Marshal error %v, appendJSON error %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("encodings differ:\n got %s\nwant %s", got, want)
		}
	})
}

// deepValue nests v n levels deep (n from the fuzzer, up to 40), alternating
// maps and lists.
func deepValue(n int, v any) any {
	n = ((n % 41) + 41) % 41
	for i := range n {
		if i%2 == 0 {
			v = map[string]any{"k": v}
		} else {
			v = []any{v}
		}
	}
	return v
}
