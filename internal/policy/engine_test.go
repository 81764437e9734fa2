package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/warden-ai/warden/internal/gateway"
)

func init() {
	// warden_test.panic lets testdata/panic make the evaluator panic.
	rego.RegisterBuiltin1(&rego.Function{
		Name: "warden_test.panic",
		Decl: types.NewFunction(types.Args(types.A), types.B),
	}, func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) {
		panic("boom from a built-in")
	})
}

// baseInput is a well-formed input: service billing-bot asks for chat
// completions on the inference segment.
func baseInput() Input {
	in := Input{
		Principal: PrincipalInput{
			Kind:         gateway.KindService,
			ID:           "spiffe://example.org/billing-bot",
			AuthMethod:   "api_key",
			CredentialID: "key_01",
			AuthTime:     time.Date(2025, 6, 2, 9, 59, 0, 0, time.UTC),
			Scopes:       []string{"inference:chat.completions"},
		},
		Action: "chat.completions",
		Resource: ResourceInput{
			Route: "openai", Segment: "inference", API: "openai",
			Method: "POST", Path: "/v1/chat/completions", Model: "gpt-4o-mini",
		},
		Context: ContextInput{SourceIP: "10.0.0.7", RequestID: "req_01", RequestBytes: 128},
	}
	in.Context.SetTime(time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC), nil)
	return in
}

func mustLoad(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return e
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name        string
		dir         string
		edit        func(*Input)
		wantAllow   bool
		wantReasons []string
		wantOblig   []string // obligation keys
		wantErr     error    // ErrEvaluation or ErrUnavailable
		errContains string
	}{
		{name: "allow with reasons", dir: "basic", wantAllow: true, wantReasons: []string{"chat completions are open"}},
		{name: "default deny", dir: "basic", edit: func(in *Input) { in.Action = "embeddings" },
			wantReasons: []string{ReasonDefaultDeny}},
		{name: "deny overrides allow, reasons sorted", dir: "basic",
			edit:        func(in *Input) { in.Resource.Model = "bad"; in.Resource.Stream = true },
			wantReasons: []string{"model bad is blocked", "streaming is off for this model"}},
		{name: "deny without allow", dir: "basic",
			edit:        func(in *Input) { in.Action = "embeddings"; in.Resource.Model = "bad" },
			wantReasons: []string{"model bad is blocked"}},
		{name: "empty obligations object is none", dir: "basic", edit: func(in *Input) { in.Resource.Path = "/empty-obligations" },
			wantAllow: true, wantReasons: []string{"chat completions are open"}},
		{name: "obligations returned as data", dir: "obligations", wantAllow: true, wantReasons: []string{"allowed with obligations"},
			wantOblig: []string{"audit_level", "mask", "max_tokens", "rate_class", "require_mfa"}},
		{name: "unknown obligations are data too", dir: "obligations", edit: func(in *Input) { in.Action = "unknown" },
			wantAllow: true, wantReasons: []string{"allowed with obligations"}, wantOblig: []string{"cap", "mask"}},
		{name: "max_tokens as an exponent", dir: "obligations", edit: func(in *Input) { in.Action = "max_tokens_exponent" },
			wantAllow: true, wantReasons: []string{"allowed with obligations"}, wantOblig: []string{"max_tokens"}},
		{name: "mask not an object", dir: "obligations", edit: func(in *Input) { in.Action = "bad_mask_type" },
			wantErr: ErrEvaluation, errContains: "obligation mask: want an object"},
		{name: "mask with an unknown action", dir: "obligations", edit: func(in *Input) { in.Action = "bad_mask_action" },
			wantErr: ErrEvaluation, errContains: `obligation mask: pii: want "mask", "hash" or "block", got "erase"`},
		{name: "mask with an empty class", dir: "obligations", edit: func(in *Input) { in.Action = "bad_mask_key" },
			wantErr: ErrEvaluation, errContains: "empty data class"},
		{name: "max_tokens zero", dir: "obligations", edit: func(in *Input) { in.Action = "bad_max_tokens_zero" },
			wantErr: ErrEvaluation, errContains: "obligation max_tokens: want a positive integer up to 9007199254740992, got 0"},
		{name: "max_tokens negative", dir: "obligations", edit: func(in *Input) { in.Action = "bad_max_tokens_negative" },
			wantErr: ErrEvaluation, errContains: "got -5"},
		{name: "max_tokens fraction", dir: "obligations", edit: func(in *Input) { in.Action = "bad_max_tokens_fraction" },
			wantErr: ErrEvaluation, errContains: "got 2.5"},
		{name: "max_tokens string", dir: "obligations", edit: func(in *Input) { in.Action = "bad_max_tokens_string" },
			wantErr: ErrEvaluation, errContains: "want a positive integer, got string"},
		{name: "max_tokens huge", dir: "obligations", edit: func(in *Input) { in.Action = "bad_max_tokens_huge" },
			wantErr: ErrEvaluation, errContains: "obligation max_tokens"},
		{name: "require_mfa not a boolean", dir: "obligations", edit: func(in *Input) { in.Action = "bad_require_mfa" },
			wantErr: ErrEvaluation, errContains: "obligation require_mfa: want a boolean, got string"},
		{name: "rate_class not a string", dir: "obligations", edit: func(in *Input) { in.Action = "bad_rate_class_type" },
			wantErr: ErrEvaluation, errContains: "obligation rate_class: want a class name"},
		{name: "rate_class not a name", dir: "obligations", edit: func(in *Input) { in.Action = "bad_rate_class_name" },
			wantErr: ErrEvaluation, errContains: "obligation rate_class"},
		{name: "audit_level unknown", dir: "obligations", edit: func(in *Input) { in.Action = "bad_audit_level" },
			wantErr: ErrEvaluation, errContains: `obligation audit_level: want "standard" or "full", got "verbose"`},
		{name: "policy split over files and dirs", dir: "nested", wantAllow: true},
		{name: "policy split over files, deny", dir: "nested", edit: func(in *Input) { in.Action = "embeddings" },
			wantReasons: []string{ReasonDefaultDeny}},
		{name: "non-boolean allow", dir: "nonbool", wantErr: ErrEvaluation, errContains: "allow is string, want boolean"},
		{name: "reasons not strings", dir: "badreasons", wantErr: ErrEvaluation, errContains: "reasons contains number"},
		{name: "deny is a boolean", dir: "baddeny", edit: func(in *Input) { in.Action = "boolean" },
			wantErr: ErrEvaluation, errContains: "deny is boolean"},
		{name: "deny has numbers", dir: "baddeny", edit: func(in *Input) { in.Action = "numbers" },
			wantErr: ErrEvaluation, errContains: "deny contains number"},
		{name: "deny is an object", dir: "baddeny", edit: func(in *Input) { in.Action = "object" },
			wantErr: ErrEvaluation, errContains: "deny is object"},
		{name: "obligations not an object", dir: "badobligations", edit: func(in *Input) { in.Action = "array" },
			wantErr: ErrEvaluation, errContains: "obligations is array"},
		{name: "obligation key not a string", dir: "badobligations", edit: func(in *Input) { in.Action = "numeric_key" },
			wantErr: ErrEvaluation, errContains: "want string keys"},
		{name: "conflicting rule values", dir: "conflict", wantErr: ErrEvaluation, errContains: "eval_conflict_error"},
		{name: "no conflict, allow", dir: "conflict", edit: func(in *Input) { in.Resource.Model = "" }, wantAllow: true},
		{name: "division by zero is an error", dir: "divzero", edit: func(in *Input) { in.Context.RequestBytes = 0 },
			wantErr: ErrEvaluation, errContains: "divide by zero"},
		{name: "malformed time is an error", dir: "divzero", edit: func(in *Input) { in.Action = "time" }, wantErr: ErrEvaluation, errContains: "eval_builtin_error"},
		{name: "panic is recovered", dir: "panic", wantErr: ErrUnavailable, errContains: "boom from a built-in"},
	}
	engines := map[string]*Engine{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := engines[tt.dir]
			if e == nil {
				e = mustLoad(t, filepath.Join("testdata", tt.dir))
				engines[tt.dir] = e
			}
			in := baseInput()
			if tt.edit != nil {
				tt.edit(&in)
			}
			d, err := e.Decide(context.Background(), in)
			if d.PolicyVersion != e.Version() || !strings.HasPrefix(d.PolicyVersion, "sha256:") {
				t.Errorf("PolicyVersion = %q, want %q", d.PolicyVersion, e.Version())
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("err = %q, want it to contain %q", err, tt.errContains)
				}
				if d.Allow {
					t.Fatal("Allow = true together with an error")
				}
				wantReason := ReasonError
				if tt.wantErr == ErrUnavailable {
					wantReason = ReasonUnavailable
				}
				if !slices.Equal(d.Reasons, []string{wantReason}) {
					t.Errorf("Reasons = %q, want %q", d.Reasons, wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Allow != tt.wantAllow {
				t.Errorf("Allow = %v, want %v", d.Allow, tt.wantAllow)
			}
			if !slices.Equal(d.Reasons, tt.wantReasons) {
				t.Errorf("Reasons = %q, want %q", d.Reasons, tt.wantReasons)
			}
			var keys []string
			for k := range d.Obligations {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.wantOblig) {
				t.Errorf("obligation keys = %q, want %q", keys, tt.wantOblig)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		want []string // substrings of the error
	}{
		{"compile error names file and line", "testdata/compile_error",
			[]string{filepath.Join("testdata", "compile_error", "authz.rego") + ":7", "undefined function undefined_function"}},
		{"parse error names file and line", "testdata/parse_error",
			[]string{filepath.Join("testdata", "parse_error", "authz.rego") + ":5", "rego_parse_error"}},
		{"no package warden.authz", "testdata/nopackage", []string{"no file declares package warden.authz"}},
		{"only test files", "testdata/only_tests", []string{"no policy files"}},
		{"empty dir", t.TempDir(), []string{"no policy files"}},
		{"missing dir", filepath.Join(t.TempDir(), "missing"), []string{"no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Load(context.Background(), tt.dir)
			if err == nil {
				t.Fatalf("Load(%s) = %v, want an error", tt.dir, e)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadSkipsTestFiles(t *testing.T) {
	e := mustLoad(t, "testdata/nested")
	if got, want := e.Files(), []string{"authz.rego", "lib/helpers.rego"}; !slices.Equal(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const policy = "package warden.authz\n\nallow := true\n"
	write("authz.rego", policy)
	v1 := mustLoad(t, dir).Version()
	if !strings.HasPrefix(v1, "sha256:") || len(v1) != len("sha256:")+64 {
		t.Fatalf("Version() = %q, want sha256:<64 hex>", v1)
	}
	if v := mustLoad(t, dir).Version(); v != v1 {
		t.Errorf("reload of the same files: version %q, want %q", v, v1)
	}
	write("authz_test.rego", "package warden.authz_test\n\ntest_x if true\n")
	if v := mustLoad(t, dir).Version(); v != v1 {
		t.Errorf("a test file changed the version: %q, want %q", v, v1)
	}
	write("authz.rego", policy+"\n# a comment\n")
	v2 := mustLoad(t, dir).Version()
	if v2 == v1 {
		t.Error("version did not change when a file changed")
	}
	write("sub/extra.rego", "package warden.extra\n")
	v3 := mustLoad(t, dir).Version()
	if v3 == v2 {
		t.Error("version did not change when a file was added")
	}
	if err := os.Rename(filepath.Join(dir, "sub", "extra.rego"), filepath.Join(dir, "sub", "other.rego")); err != nil {
		t.Fatal(err)
	}
	if v := mustLoad(t, dir).Version(); v == v3 {
		t.Error("version did not change when a file was renamed")
	}
}

func TestDecideContextEnded(t *testing.T) {
	e := mustLoad(t, "testdata/basic")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Decide(ctx, baseInput())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	if d.Allow || d.PolicyVersion != e.Version() {
		t.Errorf("decision = %+v, want a deny with the policy version", d)
	}
}

// TestDecideContextEndsDuringEvaluation checks that an evaluation stops
// soon after its context ends, with ErrUnavailable, and that the next
// decision (which may reuse the pooled reader) is not cancelled.
func TestDecideContextEndsDuringEvaluation(t *testing.T) {
	e := mustLoad(t, writePolicy(t, "package warden.authz\n\n"+
		"allow if {\n\tinput.action == \"slow\"\n\tsome x in numbers.range(1, 10000)\n\tsome y in numbers.range(1, 10000)\n\tx + y < 0\n}\n"+
		"allow if input.action == \"chat.completions\"\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	in := baseInput()
	in.Action = "slow"
	start := time.Now()
	d, err := e.Decide(ctx, in)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || d.Allow {
		t.Fatalf("Decide = %+v, %v; want a deny with ErrUnavailable wrapping context.DeadlineExceeded", d, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the evaluation ran %v after its context ended", took)
	}
	d, err = e.Decide(context.Background(), baseInput())
	if err != nil || !d.Allow {
		t.Errorf("next decision = %+v, %v; want an allow", d, err)
	}
}

// TestDecideConcurrent checks that one Engine serves many goroutines (run with -race).
func TestDecideConcurrent(t *testing.T) {
	e := mustLoad(t, "../../examples/quickstart/policy")
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			in := baseInput()
			if i%2 == 1 {
				in.Principal.Scopes = nil
			}
			for range 50 {
				d, err := e.Decide(context.Background(), in)
				if err != nil {
					errc <- err
					return
				}
				if d.Allow != (i%2 == 0) {
					errc <- errors.New("wrong decision")
					return
				}
			}
			errc <- nil
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
