package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// updateGolden rewrites the golden decisions of the shipped policy sets:
//
//	go test ./internal/policy -run TestGoldenDecisions -update-golden
//
// Do it only when a policy change is meant to change decisions, and read
// the diff: every changed line is a decision that changed.
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/*.txt from the current example policies")

// TestGoldenDecisions pins every decision (allow, reasons, obligations,
// error) of each shipped example policy set over a few thousand generated
// inputs: the example requests, each mutated one field at a time over the
// values the policies tell apart, and random combinations of those
// mutations. A rewrite of a policy for speed must leave this test green.
func TestGoldenDecisions(t *testing.T) {
	ins := goldenInputs(t)
	for _, set := range benchSets {
		t.Run(set.name, func(t *testing.T) {
			e := mustLoad(t, set.dir)
			got := goldenDecisions(t, e, ins)
			path := filepath.Join("testdata", "golden", set.name+".txt")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, formatGolden(set.name, ins, got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, inHash, err := readGolden(path)
			if err != nil {
				t.Fatalf("%v (generate it with -update-golden)", err)
			}
			if h := goldenInputHash(ins); h != inHash {
				t.Fatalf("%s was generated from other inputs (hash %s, now %s): the input generator changed; regenerate with -update-golden from the policy as it was", path, inHash, h)
			}
			if len(want) != len(got) {
				t.Fatalf("%s has %d decisions, want %d", path, len(want), len(got))
			}
			bad := 0
			for i := range got {
				if got[i].equal(want[i]) {
					continue
				}
				if bad++; bad <= 5 {
					js, _ := json.Marshal(ins[i].in)
					t.Errorf("input %d (%s) changed decision:\n got  %s\n want %s\n input %s", i, ins[i].name, got[i], want[i], js)
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d decisions changed; if that is intended, regenerate with -update-golden and review the diff", bad, len(got))
			}
		})
	}
}

// goldenInput is one generated input and how it was made.
type goldenInput struct {
	name string
	in   Input
}

// goldenOut is a decision as the golden files hold it: the policy
// version is left out (it changes with every edit), the obligations are
// their canonical JSON (keys sorted).
type goldenOut struct {
	Allow       bool
	Reasons     []string
	Obligations string
	Error       string // "", "evaluation", "unavailable" or "other"
}

func (d goldenOut) equal(o goldenOut) bool {
	return d.Allow == o.Allow && slices.Equal(d.Reasons, o.Reasons) && d.Obligations == o.Obligations && d.Error == o.Error
}

func (d goldenOut) String() string {
	return fmt.Sprintf("allow=%v reasons=%q obligations=%s error=%s", d.Allow, d.Reasons, d.Obligations, d.Error)
}

func goldenDecision(t testing.TB, e *Engine, in Input) goldenOut {
	d, err := e.Decide(context.Background(), in)
	obl, jerr := json.Marshal(d.Obligations) // map keys sorted; null if none
	if jerr != nil {
		t.Fatal(jerr)
	}
	out := goldenOut{Allow: d.Allow, Reasons: d.Reasons, Obligations: string(obl)}
	switch {
	case errors.Is(err, ErrEvaluation):
		out.Error = "evaluation"
	case errors.Is(err, ErrUnavailable):
		out.Error = "unavailable"
	case err != nil:
		out.Error = "other"
	}
	return out
}

func goldenDecisions(t testing.TB, e *Engine, ins []goldenInput) []goldenOut {
	out := make([]goldenOut, len(ins))
	for i := range ins {
		out[i] = goldenDecision(t, e, ins[i].in)
	}
	return out
}

// goldenInputHash identifies the generated inputs, so that a change of the
// generator is not mistaken for a change of decisions.
func goldenInputHash(ins []goldenInput) string {
	h := sha256.New()
	for _, gi := range ins {
		js, _ := json.Marshal(gi.in)
		h.Write(js)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// formatGolden writes the distinct reasons once, then the distinct
// decisions (allow, reasons as indexes into the reasons, obligations,
// error), then the decision of each input as an index, 20 to a line. A
// reworded reason is one changed line; a decision that changes for some
// inputs changes their indexes.
func formatGolden(set string, ins []goldenInput, ds []goldenOut) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Golden decisions of the %s example policy over %d generated inputs (golden_test.go).\n", set, len(ins))
	b.WriteString("# Regenerate only when a decision is meant to change: go test ./internal/policy -run TestGoldenDecisions -update-golden\n")
	fmt.Fprintf(&b, "inputs %d %s\n", len(ins), goldenInputHash(ins))
	reasonIndex := map[string]int{}
	var reasons []string
	for _, d := range ds {
		for _, r := range d.Reasons {
			if _, ok := reasonIndex[r]; !ok {
				reasonIndex[r] = len(reasons)
				reasons = append(reasons, r)
			}
		}
	}
	fmt.Fprintf(&b, "reasons %d\n", len(reasons))
	for i, r := range reasons {
		fmt.Fprintf(&b, "%d %s\n", i, strconv.Quote(r))
	}
	index := map[string]int{}
	var distinct []string
	per := make([]int, len(ds))
	for i, d := range ds {
		idx := make([]string, len(d.Reasons))
		for j, r := range d.Reasons {
			idx[j] = strconv.Itoa(reasonIndex[r])
		}
		line := fmt.Sprintf("allow=%v reasons=%s obligations=%s error=%s", d.Allow, strings.Join(idx, ","), d.Obligations, d.Error)
		k, ok := index[line]
		if !ok {
			k = len(distinct)
			index[line] = k
			distinct = append(distinct, line)
		}
		per[i] = k
	}
	fmt.Fprintf(&b, "decisions %d\n", len(distinct))
	for i, d := range distinct {
		fmt.Fprintf(&b, "%d %s\n", i, d)
	}
	b.WriteString("per-input\n")
	for i, k := range per {
		b.WriteString(strconv.Itoa(k))
		if i%20 == 19 || i == len(per)-1 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}

// readGolden reads a file formatGolden wrote.
func readGolden(path string) (ds []goldenOut, inHash string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	bad := func(line string) error { return fmt.Errorf("%s: unexpected line %q", path, line) }
	var reasons []string
	var distinct []goldenOut
	n, nr, nd := -1, -1, -1
	state := "header"
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "#") {
			continue
		}
		switch state {
		case "header":
			if _, err := fmt.Sscanf(line, "inputs %d %s", &n, &inHash); err != nil {
				return nil, "", bad(line)
			}
			state = "reasons header"
		case "reasons header":
			if _, err := fmt.Sscanf(line, "reasons %d", &nr); err != nil {
				return nil, "", bad(line)
			}
			state = "reasons"
		case "reasons":
			if len(reasons) == nr {
				if _, err := fmt.Sscanf(line, "decisions %d", &nd); err != nil {
					return nil, "", bad(line)
				}
				state = "decisions"
				continue
			}
			i, q, ok := strings.Cut(line, " ")
			r, err := strconv.Unquote(q)
			if !ok || err != nil || i != strconv.Itoa(len(reasons)) {
				return nil, "", bad(line)
			}
			reasons = append(reasons, r)
		case "decisions":
			if len(distinct) == nd {
				if line != "per-input" {
					return nil, "", bad(line)
				}
				state = "per-input"
				continue
			}
			var d goldenOut
			i, rest, _ := strings.Cut(line, " ")
			allow, rest, _ := strings.Cut(strings.TrimPrefix(rest, "allow="), " ")
			rs, rest, _ := strings.Cut(strings.TrimPrefix(rest, "reasons="), " ")
			obl, errKind, ok := strings.Cut(strings.TrimPrefix(rest, "obligations="), " error=")
			if !ok || i != strconv.Itoa(len(distinct)) {
				return nil, "", bad(line)
			}
			d.Allow = allow == "true"
			if rs != "" {
				for _, f := range strings.Split(rs, ",") {
					k, err := strconv.Atoi(f)
					if err != nil || k < 0 || k >= len(reasons) {
						return nil, "", bad(line)
					}
					d.Reasons = append(d.Reasons, reasons[k])
				}
			}
			d.Obligations, d.Error = obl, errKind
			distinct = append(distinct, d)
		case "per-input":
			for _, f := range strings.Fields(line) {
				k, err := strconv.Atoi(f)
				if err != nil || k < 0 || k >= len(distinct) {
					return nil, "", bad(line)
				}
				ds = append(ds, distinct[k])
			}
		}
	}
	if n != len(ds) || state != "per-input" {
		return nil, "", fmt.Errorf("%s: %d decisions, header says %d inputs", path, len(ds), n)
	}
	return ds, inHash, nil
}

// splitmix64 is a tiny deterministic generator: the golden inputs must not
// depend on the Go version's math/rand.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix64) intn(n int) int { return int(s.next() % uint64(n)) }

// mutation is one value of one input dimension.
type mutation struct {
	name  string
	apply func(*Input)
}

// goldenDimensions are the input dimensions and the values the example
// policies tell apart, with values around every boundary they test. The
// grant dimension builds grants from the request as mutated so far, so it
// comes last.
func goldenDimensions() [][]mutation {
	var dims [][]mutation
	add := func(ms ...mutation) { dims = append(dims, ms) }

	type who struct{ kind, id, obo string }
	var principals []mutation
	for _, w := range []who{
		{"service", "spiffe://ml.example.org/training/trainer", ""},
		{"service", "spiffe://ml.example.org/training/evaluator", ""},
		{"service", "spiffe://ml.example.org/inference/server", ""},
		{"service", "spiffe://ml.example.org/deployment/deployer", ""},
		{"user", "alice@example.org", ""},
		{"user", "bob@example.org", ""},
		{"agent", "spiffe://ml.example.org/agent/planner", "alice@example.org"},
		{"agent", "spiffe://ml.example.org/agent/planner", "bob@example.org"},
		{"agent", "spiffe://ml.example.org/agent/planner", ""},
		{"agent", "spiffe://ml.example.org/agent/planner", "mallory@example.org"},
		{"agent", "spiffe://ml.example.org/agent/planner", "spiffe://ml.example.org/agent/triage"},
		{"agent", "spiffe://ml.example.org/agent/planner", "spiffe://ml.example.org/training/trainer"},
		{"agent", "spiffe://ml.example.org/agent/triage", "alice@example.org"},
		{"agent", "spiffe://ml.example.org/agent/triage", "bob@example.org"},
		{"agent", "spiffe://ml.example.org/agent/triage", ""},
		{"agent", "spiffe://ml.example.org/agent/unknown", "alice@example.org"},
		{"agent", "alice@example.org", "bob@example.org"},
		{"user", "spiffe://ml.example.org/training/trainer", ""},
		{"service", "spiffe://ml.example.org/agent/planner", ""},
		{"service", "alice@example.org", ""},
		{"user", "mallory@example.org", ""},
		{"service", "spiffe://ml.example.org/unknown", ""},
		{"service", "spiffe://example.org/billing-bot", ""},
		{"user", "", ""},
		{"user", "alice@example.org", "bob@example.org"},
	} {
		principals = append(principals, mutation{"principal=" + w.kind + ":" + w.id + ":" + w.obo, func(in *Input) {
			in.Principal.Kind, in.Principal.ID, in.Principal.OnBehalfOf = w.kind, w.id, w.obo
		}})
	}
	add(principals...)

	var actions []mutation
	for _, a := range []string{
		"chat.completions", "completions", "embeddings", "responses", "models.list", "models.get",
		"tools.call", "http.get", "http.post", "http.put", "http.delete", "http.patch", "http.head",
		"token.exchange", "mfa.verify", "credential.revoke",
		"grant.request", "grant.list", "grant.deny", "grant.revoke", "grant.approve", "grant.expire",
		"sanction.list", "sanction.create", "sanction.lift",
		"model.list", "model.get", "model.register", "model.verify", "model.promote", "model.rollback", "",
	} {
		actions = append(actions, mutation{"action=" + a, func(in *Input) { in.Action = a }})
	}
	add(actions...)

	var segments []mutation
	for _, s := range [][2]string{
		{"training", "training-data"}, {"inference", "inference"}, {"deployment", "deployment"},
		{"tools", "mcp"}, {"control", "warden"}, {"", "unsegmented"}, {"workspace", "ws"}, {"lab", "lab"},
	} {
		segments = append(segments, mutation{"segment=" + s[0], func(in *Input) {
			in.Resource.Segment, in.Resource.Route = s[0], s[1]
		}})
	}
	add(segments...)

	var models []mutation
	for _, m := range []string{"", "gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "internal-finetune-raw", "llama-3"} {
		models = append(models, mutation{"model=" + m, func(in *Input) { in.Resource.Model = m }})
	}
	add(models...)

	var tools []mutation
	for _, tl := range []string{"", "search", "jira", "calendar", "code_exec", "shell"} {
		tools = append(tools, mutation{"tool=" + tl, func(in *Input) { in.Resource.Tool = tl }})
	}
	add(tools...)

	var networks []mutation
	for _, ns := range [][]string{
		{}, {"corp-vpn"}, {"office"}, {"training-cluster"}, {"inference-cluster"}, {"deploy-cluster"},
		{"agent-runtime"}, {"agent-runtime", "corp-vpn"}, {"guest"}, {"deploy-cluster", "inference-cluster", "training-cluster"},
	} {
		networks = append(networks, mutation{"networks=" + strings.Join(ns, ","), func(in *Input) {
			in.Context.Networks = slices.Clone(ns)
		}})
	}
	add(networks...)

	var countries []mutation
	for _, c := range []string{"", "DE", "NL", "FR", "AT", "US"} {
		countries = append(countries, mutation{"country=" + c, func(in *Input) {
			in.Context.Geo = GeoInput{Country: c}
			if c != "" {
				in.Context.Geo.City, in.Context.Geo.ASN = "Somewhere", 64500
			}
		}})
	}
	add(countries...)

	// Local hours in Europe/Berlin (UTC+2 in June, UTC+1 in January) on
	// each side of every window edge in the catalog (0, 6, 7, 20, 22, 24),
	// and in UTC.
	var times []mutation
	for _, ts := range []string{
		"2025-06-02T10:00:00Z", "2025-06-01T22:00:00Z", "2025-06-02T03:59:59Z", "2025-06-02T04:00:00Z",
		"2025-06-02T04:59:59Z", "2025-06-02T05:00:00Z", "2025-06-02T17:59:59Z", "2025-06-02T18:00:00Z",
		"2025-06-02T19:59:59Z", "2025-06-02T20:00:00Z", "2025-06-02T21:59:59Z", "2025-01-15T05:30:00Z",
		"2025-01-15T19:30:00Z", "2025-06-07T12:00:00Z",
	} {
		for _, tz := range []string{"Europe/Berlin", "UTC"} {
			times = append(times, mutation{"time=" + ts + "@" + tz, func(in *Input) {
				t, err := time.Parse(time.RFC3339, ts)
				if err != nil {
					panic(err)
				}
				loc, err := LoadLocation(tz)
				if err != nil {
					panic(err)
				}
				// Keep the grants' and the credential's times relative to
				// the request time.
				d := t.Sub(in.Context.Time)
				for i := range in.Grants {
					in.Grants[i].ExpiresAt = in.Grants[i].ExpiresAt.Add(d)
				}
				if !in.Principal.ExpiresAt.IsZero() {
					in.Principal.ExpiresAt = in.Principal.ExpiresAt.Add(d)
				}
				in.Principal.AuthTime = in.Principal.AuthTime.Add(d)
				in.Context.SetTime(t, loc)
			}})
		}
	}
	add(times...)

	var risks []mutation
	for _, r := range []float64{0, 0.2, 0.4999, 0.5, 0.65, 0.7999, 0.8, 0.95, 1} {
		risks = append(risks, mutation{"risk=" + strconv.FormatFloat(r, 'g', -1, 64), func(in *Input) { in.Context.Risk = r }})
	}
	add(risks...)

	var data []mutation
	for _, d := range [][2][]string{
		{{}, {}},
		{{"pii"}, {"email"}},
		{{"pii"}, {"email", "payment_card"}},
		{{"pii"}, {"payment_card"}},
		{{"secret"}, {"aws_access_key"}},
		{{"injection"}, {"injection"}},
		{{"injection"}, {"indirect_injection"}},
		{{"pii", "secret"}, {"aws_access_key", "email"}},
		{{"injection", "pii"}, {"injection", "phone"}},
		{{"injection", "pii", "secret"}, {"email", "injection", "private_key"}},
		{{"other"}, {"payment_card"}},
		{{"leak"}, {"canary"}},
	} {
		data = append(data, mutation{"data=" + strings.Join(d[0], ",") + "/" + strings.Join(d[1], ","), func(in *Input) {
			in.Context.DataClasses, in.Context.FindingTypes = slices.Clone(d[0]), slices.Clone(d[1])
		}})
	}
	add(data...)

	var roles []mutation
	for _, rs := range [][]string{{}, {"grant-approver"}, {"admin"}, {"admin", "grant-approver"}, {"sanctions-admin"},
		{"model-publisher"}, {"model-approver"}, {"grant-approver", "model-publisher"}, {"security-admin"}} {
		roles = append(roles, mutation{"roles=" + strings.Join(rs, ","), func(in *Input) { in.Principal.Roles = slices.Clone(rs) }})
	}
	add(roles...)

	var scopes []mutation
	for _, ss := range [][]string{
		{}, {"inference:*"}, {"inference:chat.completions"}, {"inference:embeddings", "training:http.get"},
		{"control:*"}, {"control:token.exchange"}, {"deployment:http.put"}, {"training:*", "tools:tools.call"},
	} {
		scopes = append(scopes, mutation{"scopes=" + strings.Join(ss, ","), func(in *Input) { in.Principal.Scopes = slices.Clone(ss) }})
	}
	add(scopes...)

	add(
		mutation{"mfa=false", func(in *Input) { in.Principal.MFA = false }},
		mutation{"mfa=true", func(in *Input) { in.Principal.MFA = true }},
	)

	var expiries []mutation
	for _, d := range []time.Duration{0, -time.Hour, -time.Second, 0, time.Second, 90 * 24 * time.Hour} {
		name := "expires=never"
		if d != 0 || len(expiries) > 0 {
			name = "expires=" + d.String()
		}
		expiries = append(expiries, mutation{name, func(in *Input) {
			if name == "expires=never" {
				in.Principal.ExpiresAt = time.Time{}
				return
			}
			in.Principal.ExpiresAt = in.Context.Time.Add(d)
		}})
	}
	add(expiries...)

	var extras []mutation
	for _, x := range []struct {
		max    int64
		stream bool
		groups []string
	}{{0, false, nil}, {8000, false, nil}, {100, true, []string{"ml-team"}}, {4096, true, nil}} {
		extras = append(extras, mutation{fmt.Sprintf("max=%d,stream=%v,groups=%v", x.max, x.stream, x.groups), func(in *Input) {
			in.Context.Tokens.Max, in.Resource.Stream, in.Principal.Groups = x.max, x.stream, slices.Clone(x.groups)
		}})
	}
	add(extras...)

	// Grants, built from the request as it is: each variant breaks (or
	// keeps) one of the conditions a grant must meet.
	grant := func(in *Input) GrantInput {
		return GrantInput{
			ID: "g-7", Action: in.Action, Segment: in.Resource.Segment, Resource: in.Resource.Route,
			RequestedBy: in.Principal.ID, ApprovedBy: "carol@example.org", ExpiresAt: in.Context.Time.Add(time.Hour),
		}
	}
	var grants []mutation
	for _, g := range []struct {
		name string
		edit func(*Input, *GrantInput)
	}{
		{"none", nil},
		{"matching", func(*Input, *GrantInput) {}},
		{"any-action", func(_ *Input, g *GrantInput) { g.Action = "*"; g.Resource = "" }},
		{"model", func(in *Input, g *GrantInput) { g.Resource = in.Resource.Model }},
		{"tool", func(in *Input, g *GrantInput) { g.Resource = in.Resource.Tool }},
		{"other-resource", func(_ *Input, g *GrantInput) { g.Resource = "elsewhere" }},
		{"other-action", func(_ *Input, g *GrantInput) { g.Action = "http.delete" }},
		{"other-segment", func(_ *Input, g *GrantInput) { g.Segment = "training" }},
		{"expired", func(in *Input, g *GrantInput) { g.ExpiresAt = in.Context.Time.Add(-time.Minute) }},
		{"expiring-now", func(in *Input, g *GrantInput) { g.ExpiresAt = in.Context.Time }},
		{"expiring-next-second", func(in *Input, g *GrantInput) { g.ExpiresAt = in.Context.Time.Add(time.Second) }},
		{"self-approved", func(_ *Input, g *GrantInput) { g.ApprovedBy = g.RequestedBy }},
		{"approved-by-caller", func(in *Input, g *GrantInput) {
			g.RequestedBy, g.ApprovedBy = "carol@example.org", in.Principal.ID
		}},
		{"unapproved", func(_ *Input, g *GrantInput) { g.ApprovedBy = "" }},
		{"requested-by-other", func(_ *Input, g *GrantInput) { g.RequestedBy = "dave@example.org" }},
		{"two", nil},
	} {
		grants = append(grants, mutation{"grants=" + g.name, func(in *Input) {
			switch g.name {
			case "none":
				in.Grants = nil
			case "two":
				a, b := grant(in), grant(in)
				a.ID, a.ExpiresAt = "g-1", in.Context.Time.Add(-time.Hour)
				b.ID, b.Action, b.Resource = "g-2", "*", ""
				in.Grants = []GrantInput{a, b}
			default:
				gr := grant(in)
				g.edit(in, &gr)
				in.Grants = []GrantInput{gr}
			}
		}})
	}
	add(grants...)
	return dims
}

// goldenInputs generates the inputs: the example requests of every set
// (and the benchmarks' exchange), each with every single mutation, then
// random combinations. Each input goes through JSON and ParseInput, as
// `warden policy eval` reads it, so that the derived fields are consistent.
func goldenInputs(t testing.TB) []goldenInput { return generateInputs(t, 5, 3000) }

// generateInputs is goldenInputs with n random combinations from seed.
func generateInputs(t testing.TB, seed uint64, n int) []goldenInput {
	var bases []goldenInput
	for _, set := range benchSets {
		for _, in := range benchInputs(t, set.dir) {
			bases = append(bases, goldenInput{set.name + "/" + in.Context.RequestID, in})
		}
	}
	bases = append(bases, goldenInput{"baseInput", baseInput()})
	dims := goldenDimensions()
	var out []goldenInput
	emit := func(name string, in Input) {
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseInput(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, js)
		}
		out = append(out, goldenInput{name, parsed})
	}
	clone := func(in Input) Input {
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseInput(bytes.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, b := range bases {
		emit(b.name, b.in)
		for _, dim := range dims {
			for _, m := range dim {
				in := clone(b.in)
				m.apply(&in)
				emit(b.name+" "+m.name, in)
			}
		}
	}
	rng := splitmix64(seed)
	for range n {
		b := bases[rng.intn(len(bases))]
		in := clone(b.in)
		name := b.name
		k := 2 + rng.intn(4) // mutate about one dimension in k
		for _, dim := range dims {
			if rng.intn(k) != 0 {
				continue
			}
			m := dim[rng.intn(len(dim))]
			m.apply(&in)
			name += " " + m.name
		}
		emit(name, in)
	}
	return out
}
