package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "test/audit"

var (
	keysOnce           sync.Once
	testKey, otherKeyV *Key
)

// keys returns the test's signing key and another key with the same name.
func keys(t testing.TB) (*Key, *Key) {
	t.Helper()
	keysOnce.Do(func() {
		testKey, otherKeyV = mustKey(t, testOrigin), mustKey(t, testOrigin)
	})
	return testKey, otherKeyV
}

func mustKey(t testing.TB, name string) *Key {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sampleRecord is a fully populated record, index unset.
func sampleRecord(i int) *Record {
	return &Record{
		Time:      time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond),
		RequestID: fmt.Sprintf("req-%04d", i),
		Principal: &Principal{Kind: "agent", ID: "spiffe://example.org/agent/bot", OnBehalfOf: "alice",
			AuthMethod: "api_key", CredentialID: "key_01", Issuer: "warden", MFA: true},
		SourceIP: "192.0.2.10",
		Method:   "POST",
		Path:     "/v1/chat/completions",
		Action:   "chat.completions",
		Resource: &Resource{Route: "openai", Segment: "inference", API: "openai", Model: "gpt-4o-mini"},
		Stream:   true,
		Decision: &Decision{Allow: true, Reasons: []string{"role:engineer"},
			Obligations: map[string]any{"cap": map[string]any{"max_tokens": 512}}, PolicyVersion: "v7"},
		Obligations:    &Obligations{Applied: []string{"cap_max_tokens:512"}, MaxTokens: 512},
		Findings:       []Finding{{Guard: "dlp", Type: "email", Class: "pii", Where: "request", Start: 40, End: 57, Score: 0.9, Action: "masked"}},
		Grants:         []string{"grant-01"},
		Status:         200,
		Upstream:       "https://api.openai.example",
		UpstreamStatus: 200,
		LatencyMS:      12.5,
		UpstreamMS:     10.25,
		BytesIn:        42,
		BytesOut:       1024,
		BodySHA256:     strings.Repeat("ab", 32),
		Usage:          &Usage{PromptTokens: 12, CompletionTokens: 40, Reported: true},
	}
}

// testOptions are Options with the test key and origin.
func testOptions(t testing.TB, opts Options) Options {
	t.Helper()
	if opts.Key == nil {
		opts.Key, _ = keys(t)
	}
	if opts.Origin == "" {
		opts.Origin = testOrigin
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

func openTemp(t testing.TB, opts Options) (*Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l, err := Open(dir, testOptions(t, opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, dir
}

func appendN(t testing.TB, l *Log, from, n int) []*Record {
	t.Helper()
	var recs []*Record
	for i := from; i < from+n; i++ {
		r := sampleRecord(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// goAppend appends one sample record from a goroutine other than the test's.
func goAppend(t testing.TB, l *Log, i int) {
	if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
		t.Errorf("Append %d: %v", i, err)
	}
}

// writeLog writes n records to a new log, closes it and returns its directory.
func writeLog(t testing.TB, n int, opts Options) string {
	t.Helper()
	l, dir := openTemp(t, opts)
	appendN(t, l, 0, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dir
}

// verify checks the log in dir with the test key.
func verify(t testing.TB, dir string) (Report, error) {
	t.Helper()
	k, _ := keys(t)
	return Verify(dir, k.VerifierKey())
}

// copyDir copies a log directory, as a snapshot taken at a crash would be.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// faults injects failures into the files the file backend writes. Kinds
// are "seg", "hashes" and "checkpoints".
type faults struct {
	mu        sync.Mutex
	writes    map[string]int
	syncs     map[string]int
	maxWrite  map[string]int
	failWrite map[string]error
	failSync  map[string]error
	short     map[string]bool
	gate      chan struct{} // if set, segment writes wait for it
	started   chan struct{} // if set, closed when the first segment write starts
	once      sync.Once
}

func newFaults() *faults {
	return &faults{writes: map[string]int{}, syncs: map[string]int{}, maxWrite: map[string]int{},
		failWrite: map[string]error{}, failSync: map[string]error{}, short: map[string]bool{}}
}

func kindOf(name string) string {
	if strings.HasPrefix(name, segPrefix) {
		return "seg"
	}
	return name
}

func (fs *faults) wrap(name string, f storeFile) storeFile {
	return &faultFile{storeFile: f, kind: kindOf(name), fs: fs}
}

func (fs *faults) set(fn func(fs *faults)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fn(fs)
}

func (fs *faults) count(m map[string]int, kind string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return m[kind]
}

type faultFile struct {
	storeFile
	kind string
	fs   *faults
}

func (f *faultFile) Write(p []byte) (int, error) {
	fs := f.fs
	if f.kind == "seg" {
		if fs.started != nil {
			fs.once.Do(func() { close(fs.started) })
		}
		if fs.gate != nil {
			<-fs.gate
		}
	}
	fs.mu.Lock()
	fs.writes[f.kind]++
	fs.maxWrite[f.kind] = max(fs.maxWrite[f.kind], len(p))
	fw, short := fs.failWrite[f.kind], fs.short[f.kind]
	fs.mu.Unlock()
	if fw != nil {
		// A partial write before the failure, as a full disk does.
		n, _ := f.storeFile.Write(p[:len(p)/2])
		return n, fw
	}
	if short {
		return f.storeFile.Write(p[:len(p)-1])
	}
	return f.storeFile.Write(p)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.syncs[f.kind]++
	fs := f.fs.failSync[f.kind]
	f.fs.mu.Unlock()
	if fs != nil {
		return fs
	}
	return f.storeFile.Sync()
}

var _ io.Writer = (*faultFile)(nil)
