package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecide feeds arbitrary JSON through the eval path (ParseInput, then
// Decide with the quickstart policy): no panic, never an allow together
// with an error, and the input pruned to what the policy reads decides
// exactly as the whole input does.
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
	f.Add([]byte(`{"context":{"timezone":"Asia/Kolkata","networks":["b","a","a"],"geo":{"country":"DE","asn":1},` +
		`"posture":{"managed":true,"n":[1,{"x":null}]},"risk":0.999,"tokens":{"prompt":1,"max":9223372036854775807}},` +
		`"grants":[{"id":"g","segment":"inference","action":"*","expires_at":"2025-06-02T11:00:00Z"}],"resource":{"tool":"t"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(bytes.NewReader(data))
		if err != nil {
			return
		}
		d, err := e.Decide(context.Background(), in)
		whole, werr := e.decide(context.Background(), &in, &allFields, nil)
		if !reflect.DeepEqual(d, whole) || (err == nil) != (werr == nil) {
			t.Fatalf("pruned input: %+v, %v; whole input: %+v, %v", d, err, whole, werr)
		}
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
