package policy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/warden-ai/warden/internal/gateway"
)

// randomInput fills every exported field of an Input from a few values per
// kind, so that two random inputs often agree on a field and often differ.
// It fails the test on a field kind it does not know: a new kind of field
// must be taught here, so that the memo key is checked against it.
func randomInput(t *testing.T, rng *rand.Rand) Input {
	t.Helper()
	var in Input
	fill(t, rng, reflect.ValueOf(&in).Elem(), "Input")
	return in
}

var (
	memoZones = []*time.Location{time.UTC, time.FixedZone("A", 3600), time.FixedZone("B", -7200)}
	memoTimes = []time.Time{
		{},
		time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 2, 10, 0, 0, 500, time.UTC), // same second: the same text
		time.Date(2025, 6, 2, 10, 0, 1, 0, time.UTC),
		time.Date(2025, 6, 2, 11, 0, 0, 0, time.FixedZone("A", 3600)), // the same instant as 10:00Z
	}
	memoStrings = []string{"", "a", "b", "ab"}
)

func fill(t *testing.T, rng *rand.Rand, v reflect.Value, path string) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		tm := memoTimes[rng.IntN(len(memoTimes))]
		if rng.IntN(2) == 0 {
			tm = tm.In(memoZones[rng.IntN(len(memoZones))])
		}
		v.Set(reflect.ValueOf(tm))
		return
	case reflect.TypeFor[map[string]any]():
		maps := []map[string]any{nil, {}, {"x": 1}, {"x": "1"}, {"x": []any{1, "y"}}, {"y": map[string]any{"z": true}}}
		v.Set(reflect.ValueOf(maps[rng.IntN(len(maps))]))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, rng, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.String:
		v.SetString(memoStrings[rng.IntN(len(memoStrings))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Uint32:
		n := rng.IntN(3)
		if v.CanInt() {
			v.SetInt(int64(n))
		} else {
			v.SetUint(uint64(n))
		}
	case reflect.Float64:
		v.SetFloat([]float64{0, 0.5, 1}[rng.IntN(3)])
	case reflect.Slice:
		n := rng.IntN(3)
		if n == 0 && rng.IntN(2) == 0 {
			v.Set(reflect.Zero(v.Type())) // nil and empty are both []
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(t, rng, s.Index(i), path+"[]")
		}
		v.Set(s)
	default:
		t.Fatalf("randomInput: %s is a %s; teach fill to vary it", path, v.Type())
	}
}

// TestMemoKeyCoversValue holds the memo key to the input document: two
// inputs with the same key must give the policy the same document, for
// any set of fields in use. Were a field of the document left out of the
// key, two inputs differing only there would share a key, and one would
// be answered with the other's decision. The converse (same document,
// same key) is what makes the memo hit; it is checked too.
func TestMemoKeyCoversValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	uses := []fieldSet{allFields}
	for range 40 {
		var u fieldSet
		for f := range u {
			u[f] = rng.IntN(3) > 0
		}
		uses = append(uses, u)
	}
	for _, f := range []field{fPrincipal, fResource, fContext} { // one section alone
		var u fieldSet
		u[f] = true
		for _, k := range inputSections[sectionName(f)].keys {
			u[k] = true
		}
		uses = append(uses, u)
	}
	type doc struct {
		key []byte
		val ast.Value
	}
	sameKeys, sameDocs := 0, 0
	for ui, use := range uses {
		var docs []doc
		for range 400 {
			in := randomInput(t, rng)
			key, ok := memoKey(nil, &in, &use)
			if !ok {
				t.Fatalf("memoKey refused %+v", in)
			}
			val, err := in.value(&use)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, doc{key, val})
		}
		for i := range docs {
			for j := range i {
				keyEq := bytes.Equal(docs[i].key, docs[j].key)
				valEq := docs[i].val.Compare(docs[j].val) == 0
				if keyEq {
					sameKeys++
				}
				if valEq {
					sameDocs++
				}
				if keyEq && !valEq {
					t.Fatalf("use set %d: same key, different documents:\n%v\n%v", ui, docs[i].val, docs[j].val)
				}
				if valEq && !keyEq {
					t.Errorf("use set %d: same document, different keys (the memo would miss):\n%v", ui, docs[i].val)
				}
			}
		}
	}
	if sameKeys == 0 {
		t.Fatal("no two inputs shared a key: the test checks nothing")
	}
	t.Logf("%d pairs with the same key, %d with the same document", sameKeys, sameDocs)
}

// leaves returns the settable parts of v that fill varies: time values,
// maps, scalars, slices, and the elements of slices.
func leaves(v reflect.Value) []reflect.Value {
	switch {
	case v.Type() == reflect.TypeFor[time.Time](), v.Kind() == reflect.Map:
		return []reflect.Value{v}
	case v.Kind() == reflect.Struct:
		var out []reflect.Value
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = append(out, leaves(v.Field(i))...)
			}
		}
		return out
	case v.Kind() == reflect.Slice:
		out := []reflect.Value{v}
		for i := range v.Len() {
			out = append(out, leaves(v.Index(i))...)
		}
		return out
	default:
		return []reflect.Value{v}
	}
}

// TestMemoKeyEveryField changes one part of an input at a time: wherever
// the document changes, the key must change too, with every field in use
// and with the changed field's section alone.
func TestMemoKeyEveryField(t *testing.T) {
	checked := 0
	for seed := range uint64(30) {
		base := randomInput(t, rand.New(rand.NewPCG(seed, 1)))
		n := len(leaves(reflect.ValueOf(&base).Elem()))
		for k := range n {
			other := randomInput(t, rand.New(rand.NewPCG(seed, 1))) // a copy of base
			leaf := leaves(reflect.ValueOf(&other).Elem())[k]
			rng := rand.New(rand.NewPCG(seed, uint64(k)+2))
			for try := 0; try < 20; try++ {
				fill(t, rng, leaf, "leaf")
				a, _ := base.value(&allFields)
				b, _ := other.value(&allFields)
				if a.Compare(b) != 0 {
					break
				}
			}
			for _, use := range append([]fieldSet{allFields}, singleFields()...) {
				a, err := base.value(&use)
				if err != nil {
					t.Fatal(err)
				}
				b, err := other.value(&use)
				if err != nil {
					t.Fatal(err)
				}
				if a.Compare(b) == 0 {
					continue
				}
				ka, _ := memoKey(nil, &base, &use)
				kb, _ := memoKey(nil, &other, &use)
				checked++
				if bytes.Equal(ka, kb) {
					t.Fatalf("seed %d, part %d: the documents differ, the keys do not:\n%v\n%v", seed, k, a, b)
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d changes checked", checked)
	}
	t.Logf("%d changes checked", checked)
}

// singleFields returns, for each field of a section, the set of that field
// alone in its section; and each section that has no fields.
func singleFields() []fieldSet {
	var out []fieldSet
	for _, sec := range inputSections {
		if sec.keys == nil {
			var u fieldSet
			u[sec.f] = true
			out = append(out, u)
		}
		for _, k := range sec.keys {
			var u fieldSet
			u[sec.f], u[k] = true, true
			out = append(out, u)
		}
	}
	return out
}

func sectionName(f field) string {
	for name, s := range inputSections {
		if s.f == f {
			return name
		}
	}
	return ""
}

func TestMemoizable(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want bool
	}{
		{"pure", `allow if { input.action == "x"; sprintf("%s", [input.action]) == "x" }`, true},
		{"function of the policy", "f(x) := upper(x)\nallow if f(input.action) == \"X\"", true},
		{"clock", `allow if time.now_ns() > 0`, false},
		{"clock through a function", "f(_) := time.now_ns()\nallow if f(1) > 0", false},
		{"network", `allow if http.send({"method": "GET", "url": "http://127.0.0.1:9"}).status_code == 200`, false},
		{"random", `allow if rand.intn("x", 10) == 1`, false},
		{"jwt reads the clock", `allow if { [ok, _, _] := io.jwt.decode_verify(input.action, {"secret": "k"}); ok }`, false},
		{"print, erased by the compiler", `allow if { print(input.action); true }`, true},
		{"with a clock", "allow if { time.now_ns() == 1 with time.now_ns as 1 }", false},
		{"with a value", "allow if { input.action == \"x\" with input.action as \"x\" }", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("p.rego", "package warden.authz\n"+tt.src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
			if c.Compile(map[string]*ast.Module{"p.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			if got := memoizable(c.Modules); got != tt.want {
				t.Errorf("memoizable = %v, want %v", got, tt.want)
			}
		})
	}
}

// loadPolicySource writes one policy file into a new directory and loads it.
func loadPolicySource(t *testing.T, src string) *Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package warden.authz\n"+src), 0o600); err != nil {
		t.Fatal(err)
	}
	return mustLoad(t, dir)
}

func TestStageMemo(t *testing.T) {
	run := func(t *testing.T, s *Stage, edit func(*gateway.Exchange)) *gateway.Exchange {
		t.Helper()
		ex := newExchange()
		if edit != nil {
			edit(ex)
		}
		_ = s.Handle(ex, func(*gateway.Exchange) error { return nil })
		return ex
	}

	t.Run("repeat hits, any change of a field read misses", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/basic"), nil)
		for range 3 {
			if ex := run(t, s, nil); !ex.Decision.Allow {
				t.Fatalf("allow expected: %+v", ex.Decision)
			}
		}
		if h, m := s.MemoStats(); h != 2 || m != 1 {
			t.Fatalf("hits, misses = %d, %d; want 2, 1", h, m)
		}
		// The model is read by the policy: a new model is a new decision.
		ex := run(t, s, func(ex *gateway.Exchange) { ex.Model = "bad" })
		if ex.Decision.Allow || ex.Decision.Reasons[0] != "model bad is blocked" {
			t.Fatalf("bad model: %+v", ex.Decision)
		}
		// The request id is not read: another id hits.
		run(t, s, func(ex *gateway.Exchange) { ex.ID = "req_02" })
		if h, m := s.MemoStats(); h != 3 || m != 2 {
			t.Fatalf("hits, misses = %d, %d; want 3, 2", h, m)
		}
	})

	t.Run("a remembered decision is a copy", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/basic"), nil)
		ex := run(t, s, nil)
		ex.Decision.Reasons[0] = "changed by a later stage"
		ex.Decision.Reasons = append(ex.Decision.Reasons, "appended")
		ex = run(t, s, nil)
		if !slices.Equal(ex.Decision.Reasons, []string{"chat completions are open"}) {
			t.Fatalf("reasons = %q", ex.Decision.Reasons)
		}
		if h, _ := s.MemoStats(); h != 1 {
			t.Fatalf("hits = %d, want 1", h)
		}
	})

	t.Run("the clock turns the memo off", func(t *testing.T) {
		e := loadPolicySource(t, "allow if time.now_ns() > 0\n")
		s := NewStage(e, nil)
		run(t, s, nil)
		run(t, s, nil)
		if h, m := s.MemoStats(); h != 0 || m != 0 {
			t.Fatalf("hits, misses = %d, %d; want the memo off", h, m)
		}
	})

	t.Run("a new engine starts empty", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/basic"), nil)
		run(t, s, nil)
		run(t, s, nil)
		s.Swap(loadPolicySource(t, "deny contains \"closed\" if true\n"))
		if ex := run(t, s, nil); ex.Decision.Allow || ex.Decision.Reasons[0] != "closed" {
			t.Fatalf("after swap: %+v", ex.Decision)
		}
	})

	t.Run("errors are not remembered", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/nonbool"), nil)
		for range 2 {
			if ex := run(t, s, nil); ex.Decision.Allow || ex.Decision.Reasons[0] != ReasonError {
				t.Fatalf("nonbool: %+v", ex.Decision)
			}
		}
		if h, m := s.MemoStats(); h != 0 || m != 2 {
			t.Fatalf("hits, misses = %d, %d; want 0, 2", h, m)
		}
	})

	t.Run("off", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/basic"), nil)
		s.SetMemoEntries(0)
		run(t, s, nil)
		run(t, s, nil)
		if h, m := s.MemoStats(); h != 0 || m != 0 {
			t.Fatalf("hits, misses = %d, %d; want the memo off", h, m)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		s := NewStage(mustLoad(t, "testdata/basic"), nil)
		s.SetMemoEntries(8)
		for i := range 100 {
			run(t, s, func(ex *gateway.Exchange) { ex.Model = string(rune('a'+i%26)) + "x" + string(rune('a'+i/26)) })
		}
		m := s.memo.Load()
		if n := len(m.young) + len(m.old); n > 8 {
			t.Fatalf("%d decisions remembered, want at most 8", n)
		}
	})
}

// BenchmarkStageMemo is BenchmarkStage's request repeated: every decision
// after the first comes from the memo.
func BenchmarkStageMemo(b *testing.B) {
	s := NewStage(mustLoad(b, "../../examples/quickstart/policy"), nil)
	ex := newExchange()
	next := func(*gateway.Exchange) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		ex.Decision = nil
		if err := s.Handle(ex, next); err != nil {
			b.Fatal(err)
		}
	}
	if h, _ := s.MemoStats(); h == 0 {
		b.Fatal("no memo hits")
	}
}

func TestStageDecide(t *testing.T) {
	ctx := t.Context()
	s := NewStage(mustLoad(t, "testdata/basic"), nil)
	in := baseInput()
	for range 2 { // the second from the memo
		d, err := s.Decide(ctx, in)
		if err != nil || !d.Allow || !slices.Equal(d.Reasons, []string{"chat completions are open"}) {
			t.Fatalf("Decide = %+v, %v", d, err)
		}
	}
	if h, _ := s.MemoStats(); h != 1 {
		t.Fatalf("memo hits %d, want 1", h)
	}
	in.Resource.Model = "bad"
	if d, err := s.Decide(ctx, in); err != nil || d.Allow {
		t.Fatalf("bad model: %+v, %v", d, err)
	}
	s.Swap(nil)
	if d, err := s.Decide(ctx, in); !errors.Is(err, ErrUnavailable) || d.Allow {
		t.Fatalf("no engine: %+v, %v", d, err)
	}
}
