package respond

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecode: the store file parser never panics, and whatever it accepts
// encodes and decodes to the same sanctions.
func FuzzDecode(f *testing.F) {
	x := Sanction{ID: "s_0123456789abcdef01234567", Principal: "agent:bot", Type: Throttle, Class: "slow",
		Reason: "tokens_out 40x baseline", Source: "playbook:exfil", CreatedBy: "warden", RequestID: "r1",
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)}
	good, err := Encode([]Sanction{x})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"sanctions":[]}`))
	f.Add([]byte(`{"version":1,"sanctions":null}`))
	f.Add([]byte(`{"version":1,"sanctions":[{"id":"s_0123456789abcdef01234567","principal":"user:a","type":"quarantine","reason":"","source":"manual","created_by":"ops","created_at":"2026-03-01T12:00:00Z","expires_at":"2026-03-01T12:00:01+01:00"}]}`))
	f.Add([]byte(`{"version":1,"sanctions":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := Decode(data)
		if err != nil {
			return
		}
		out, err := Encode(list)
		if err != nil {
			t.Fatalf("encode of decoded sanctions: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("decode of encoded sanctions: %v\n%s", err, out)
		}
		out2, _ := Encode(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
		for _, s := range again {
			if validate(s) != nil {
				t.Fatalf("invalid sanction accepted: %+v", s)
			}
		}
	})
}
