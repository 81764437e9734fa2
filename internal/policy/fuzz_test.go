package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// FuzzDecide feeds arbitrary JSON through the eval path (ParseInput, then
// Decide with the quickstart policy): no panic, and never an allow together
// with an error.
func FuzzDecide(f *testing.F) {
	e := mustLoad(f, quickstart)
	seed, err := json.Marshal(baseInput())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"principal":{"scopes":["inference:*"],"expires_at":"2025-06-02T10:00:00Z"},"resource":{"segment":"inference","model":"internal-finetune-raw"},"action":"x"}`))
	f.Add([]byte(`{"principal":{"auth_time":"9999-12-31T23:59:59Z","scopes":[":*"]},"context":{"time":"0001-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"action":"\u0000\ud800","principal":{"scopes":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(bytes.NewReader(data))
		if err != nil {
			return
		}
		d, err := e.Decide(context.Background(), in)
		if err != nil && d.Allow {
			t.Fatalf("Decide allowed with an error: %v", err)
		}
		if d.PolicyVersion != e.Version() {
			t.Fatalf("PolicyVersion = %q", d.PolicyVersion)
		}
		if d.Allow && len(d.Reasons) == 0 {
			t.Fatalf("quickstart allowed without a reason: %+v", d)
		}
	})
}
