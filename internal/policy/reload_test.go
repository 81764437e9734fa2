package policy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// genPolicy is a policy that allows chat completions and names its
// generation in the reasons, so a decision tells which policy made it.
func genPolicy(gen int) string {
	return fmt.Sprintf("package warden.authz\n\nallow if input.action == \"chat.completions\"\n\n"+
		"reasons contains \"generation %d\" if allow\n", gen)
}

const genTest = "package warden.authz_test\n\nimport data.warden.authz\n\n" +
	"test_allows_chat if authz.allow with input as {\"action\": \"chat.completions\"}\n"

// reloadFixture is a policy dir, a stage running it and its reloader.
type reloadFixture struct {
	dir     string
	stage   *Stage
	r       *Reloader
	logs    *syncBuffer
	mu      sync.Mutex
	results []ReloadResult
}

func newReloadFixture(t *testing.T) *reloadFixture {
	t.Helper()
	f := &reloadFixture{dir: t.TempDir(), logs: &syncBuffer{}}
	f.write(t, "authz.rego", genPolicy(0))
	f.write(t, "authz_test.rego", genTest)
	e, fp, err := LoadSnapshot(context.Background(), f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.stage = NewStage(e, nil)
	f.r = NewReloader(f.dir, f.stage, ReloaderOptions{
		Logger:      slog.New(slog.NewTextHandler(f.logs, nil)),
		Fingerprint: fp,
		OnResult: func(r ReloadResult) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.results = append(f.results, r)
		},
	})
	return f
}

func (f *reloadFixture) write(t *testing.T, name, src string) {
	t.Helper()
	// Write and rename, as editors and config management do, so that a
	// concurrent read sees the old or the new file, never half of one.
	tmp := filepath.Join(f.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, name)); err != nil {
		t.Fatal(err)
	}
}

// reasons decides one exchange with the stage and returns the reasons.
func (f *reloadFixture) reasons(t *testing.T) []string {
	t.Helper()
	ex := newExchange()
	if err := f.stage.Handle(ex, func(*gateway.Exchange) error { return nil }); err != nil {
		t.Fatalf("Handle: %v (decision %+v)", err, ex.Decision)
	}
	return ex.Decision.Reasons
}

func (f *reloadFixture) lastResult() ReloadResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) == 0 {
		return ReloadResult{}
	}
	return f.results[len(f.results)-1]
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReload(t *testing.T) {
	f := newReloadFixture(t)
	ctx := context.Background()
	v0 := f.stage.Engine().Version()
	st := f.r.Status()
	if st.Version != v0 || st.LoadedAt.IsZero() || st.LastError != "" || st.Dir != f.dir ||
		strings.Join(st.Files, ",") != "authz.rego" {
		t.Fatalf("initial status = %+v", st)
	}

	f.write(t, "authz.rego", genPolicy(1))
	if err := f.r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := f.stage.Engine().Version()
	if v1 == v0 || f.reasons(t)[0] != "generation 1" {
		t.Fatalf("after reload: version %s (was %s), reasons %q", v1, v0, f.reasons(t))
	}
	if st := f.r.Status(); st.Version != v1 || st.Reloads != 1 || st.LastError != "" || !st.LoadedAt.After(time.Time{}) {
		t.Errorf("status = %+v", st)
	}
	if r := f.lastResult(); !r.OK || r.Version != v1 {
		t.Errorf("OnResult got %+v", r)
	}

	tests := []struct {
		name, file, src string
		wantErr         []string
		wantFailed      int
	}{
		{"syntax error", "authz.rego", "package warden.authz\n\nallow if {\n", []string{"authz.rego:4", "rego_parse_error"}, 0},
		{"compile error", "authz.rego", "package warden.authz\n\nallow if nope(input.action)\n", []string{"authz.rego:3", "undefined function nope"}, 0},
		{"no warden.authz package", "authz.rego", "package other\n\nallow := true\n", []string{"no file declares package warden.authz"}, 0},
		{"failing test", "authz.rego", "package warden.authz\n\nallow if input.action == \"embeddings\"\n",
			[]string{"1 of 1 tests did not pass", "FAIL data.warden.authz_test.test_allows_chat"}, 1},
		{"test that does not compile", "authz_test.rego", "package warden.authz_test\n\ntest_x if undefined_fn(1)\n",
			[]string{"authz_test.rego:3"}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.write(t, "authz.rego", genPolicy(1))
			f.write(t, "authz_test.rego", genTest)
			f.write(t, tt.file, tt.src)
			err := f.r.Reload(ctx)
			if err == nil {
				t.Fatal("Reload succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if f.stage.Engine().Version() != v1 || f.reasons(t)[0] != "generation 1" {
				t.Fatalf("the old policy did not stay: version %s, reasons %q", f.stage.Engine().Version(), f.reasons(t))
			}
			st := f.r.Status()
			if st.Version != v1 || st.LastError != err.Error() || st.Failures != uint64(i+1) || len(st.FailedTests) != tt.wantFailed {
				t.Errorf("status = %+v", st)
			}
			if r := f.lastResult(); r.OK || r.Err == nil || r.Version != v1 {
				t.Errorf("OnResult got %+v", r)
			}
			if !strings.Contains(f.logs.String(), "the previous policy stays in force") {
				t.Errorf("failure not logged: %s", f.logs.String())
			}
		})
	}

	// A good edit after failures clears the error.
	f.write(t, "authz.rego", genPolicy(3))
	f.write(t, "authz_test.rego", genTest)
	if err := f.r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.r.Status(); st.LastError != "" || st.Reloads != 2 || f.reasons(t)[0] != "generation 3" {
		t.Errorf("status after recovery = %+v", st)
	}
}

func TestReloadPoll(t *testing.T) {
	f := newReloadFixture(t)
	ctx := context.Background()
	if tried, err := f.r.Poll(ctx, time.Millisecond); tried || err != nil {
		t.Fatalf("Poll of an unchanged dir = %v, %v; want no attempt", tried, err)
	}
	f.write(t, "authz.rego", genPolicy(1))
	if tried, err := f.r.Poll(ctx, time.Millisecond); !tried || err != nil {
		t.Fatalf("Poll after an edit = %v, %v", tried, err)
	}
	if got := f.reasons(t)[0]; got != "generation 1" {
		t.Fatalf("reasons %q after the poll", got)
	}
	// A test file change is a change too: it may fail the policy in force.
	f.write(t, "authz_test.rego", genTest+"\ntest_denies if false\n")
	if tried, err := f.r.Poll(ctx, time.Millisecond); !tried || err == nil {
		t.Fatalf("Poll after a failing test was added = %v, %v; want an error", tried, err)
	}
	// The same broken content is reported once, not on every poll.
	for range 3 {
		if tried, err := f.r.Poll(ctx, time.Millisecond); tried || err != nil {
			t.Fatalf("Poll of the same broken dir = %v, %v; want no new attempt", tried, err)
		}
	}
	if st := f.r.Status(); st.Failures != 1 {
		t.Errorf("failures = %d, want 1", st.Failures)
	}
	// A missing directory is reported, once.
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if tried, err := f.r.Poll(ctx, time.Millisecond); !tried || err == nil {
		t.Fatalf("Poll of a removed dir = %v, %v", tried, err)
	}
	if tried, _ := f.r.Poll(ctx, time.Millisecond); tried {
		t.Fatal("the removed dir was reported twice")
	}
	if got := f.reasons(t)[0]; got != "generation 1" {
		t.Fatalf("the policy in force changed: %q", got)
	}
}

// TestReloadWatch: the watcher picks up an edit by itself.
func TestReloadWatch(t *testing.T) {
	f := newReloadFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { f.r.Watch(ctx, 20*time.Millisecond); close(done) }()
	f.write(t, "authz.rego", genPolicy(7))
	deadline := time.Now().Add(10 * time.Second)
	for f.reasons(t)[0] != "generation 7" {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not reload: status %+v", f.r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// TestReloadUnderLoad: decisions never fail while the policy is reloaded
// twenty times, each decision is made by one whole policy, and the swap
// is seen by the next decisions (run with -race).
func TestReloadUnderLoad(t *testing.T) {
	f := newReloadFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var decisions, failures atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				ex := newExchange()
				err := f.stage.Handle(ex, func(*gateway.Exchange) error { return nil })
				decisions.Add(1)
				if err != nil || !ex.Decision.Allow || len(ex.Decision.Reasons) != 1 ||
					!strings.HasPrefix(ex.Decision.Reasons[0], "generation ") {
					failures.Add(1)
				}
			}
		}()
	}
	for gen := 1; gen <= 20; gen++ {
		f.write(t, "authz.rego", genPolicy(gen))
		if err := f.r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.reasons(t)[0]; got != fmt.Sprintf("generation %d", gen) {
			t.Fatalf("after reload %d: %q", gen, got)
		}
	}
	cancel()
	wg.Wait()
	if failures.Load() != 0 || decisions.Load() == 0 {
		t.Fatalf("%d of %d decisions failed during reloads", failures.Load(), decisions.Load())
	}
	if st := f.r.Status(); st.Reloads != 20 || st.Failures != 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestReloadConfigMap: a policy directory mounted from a Kubernetes
// ConfigMap (files are links into "..data", which is swapped atomically to
// a new "..<timestamp>" directory) loads each file once and reloads on the
// swap.
func TestReloadConfigMap(t *testing.T) {
	dir := t.TempDir()
	version := func(name string, gen int) {
		t.Helper()
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "authz.rego"), []byte(genPolicy(gen)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "authz_test.rego"), []byte(genTest), 0o644); err != nil {
			t.Fatal(err)
		}
		// Swap ..data as the kubelet does: a new link renamed over the old.
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2025_06_02_10_00_00.1", 1)
	for _, f := range []string{"authz.rego", "authz_test.rego"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	e, fp, err := LoadSnapshot(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Files(); len(got) != 1 || got[0] != "authz.rego" {
		t.Fatalf("Files() = %q, want the one linked file", got)
	}
	s := NewStage(e, nil)
	r := NewReloader(dir, s, ReloaderOptions{Fingerprint: fp})
	version("..2025_06_02_10_05_00.2", 2)
	if tried, err := r.Poll(context.Background(), time.Millisecond); !tried || err != nil {
		t.Fatalf("Poll after the swap = %v, %v", tried, err)
	}
	ex := newExchange()
	if err := s.Handle(ex, func(*gateway.Exchange) error { return nil }); err != nil || ex.Decision.Reasons[0] != "generation 2" {
		t.Fatalf("after the swap: %v, %+v", err, ex.Decision)
	}
}
