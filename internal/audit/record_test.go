package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestStoredIndex(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`{"index":0,"x":1}`, 0, true},
		{`{"index":123,"x":1}`, 123, true},
		{`{"index":9223372036854775807,"x":1}`, 9223372036854775807, true},
		{`{"index":9223372036854775808,"x":1}`, 0, false},
		{`{"index":01,"x":1}`, 0, false},
		{`{"index":-1,"x":1}`, 0, false},
		{`{"index":1}`, 0, false},
		{`{"index":,"x":1}`, 0, false},
		{`{"index":1a,"x":1}`, 0, false},
		{`{"time":"x","index":1,}`, 0, false},
		{``, 0, false},
	}
	for _, tt := range tests {
		got, err := storedIndex([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("storedIndex(%s) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseRecord(t *testing.T) {
	r := sampleRecord(3)
	r.Index = 3
	r.Decision.Obligations = map[string]any{"big": uint64(1<<63 + 1), "f": 0.1, "nested": map[string]any{"b": 1, "a": []any{"x", 2}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	// Re-encoding a parsed record gives the stored bytes back: numbers in
	// obligations keep their text.
	again, _ := json.Marshal(&got)
	if !bytes.Equal(again, data) {
		t.Errorf("round trip:\n got %s\nwant %s", again, data)
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", ``, "empty"},
		{"no index", `{"time":"2026-01-01T00:00:00Z"}`, "index"},
		{"two indexes", `{"index":1,"index":2}`, "more than one index"},
		{"trailing data", `{"index":1,"status":200} {}`, "data after"},
		{"bad type", `{"index":1,"status":"x"}`, "not a JSON record"},
		{"too large", `{"index":1,"reason":"` + strings.Repeat("x", MaxRecordBytes) + `"}`, "more than"},
	}
	for _, tt := range tests {
		if _, err := ParseRecord([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestTruncateString(t *testing.T) {
	tests := []struct {
		in  string
		cut bool
	}{
		{"", false},
		{strings.Repeat("a", MaxReasonBytes), false},
		{strings.Repeat("a", MaxReasonBytes+1), true},
		{strings.Repeat("€", MaxReasonBytes), true},
	}
	for _, tt := range tests {
		got, cut := truncateString(tt.in)
		if cut != tt.cut || len(got) > MaxReasonBytes || (cut && !strings.HasSuffix(got, truncMark)) || (!cut && got != tt.in) {
			t.Errorf("truncateString(%d bytes) = %d bytes, cut %v", len(tt.in), len(got), cut)
		}
	}
}

func TestCheckpointText(t *testing.T) {
	k, _ := keys(t)
	signed, err := k.sign("example.com/log", treeOf(5))
	if err != nil {
		t.Fatal(err)
	}
	text := string(signed[:bytes.Index(signed, []byte("\n\n"))+1])
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[0] != "example.com/log" || lines[1] != "5" || len(lines[2]) != 44 {
		t.Errorf("checkpoint text %q is not origin, size, base64 hash", text)
	}
	cp, err := OpenCheckpoint(signed, k.Verifier())
	if err != nil || cp.Origin != "example.com/log" || cp.Tree != treeOf(5) {
		t.Fatalf("OpenCheckpoint: %+v %v", cp, err)
	}
	for _, bad := range []string{"", "x\n", "origin with space\n5\nAAAA\n", "o\n-1\n" + lines[2] + "\n", "o\n05\n" + lines[2] + "\n", "o\n5\nshort\n"} {
		if _, _, err := parseCheckpointText([]byte(bad)); err == nil {
			t.Errorf("parseCheckpointText(%q) succeeded", bad)
		}
	}
	// Extension lines are allowed.
	if _, tree, err := parseCheckpointText([]byte(text + "ext line\n")); err != nil || tree != treeOf(5) {
		t.Errorf("with an extension line: %v", err)
	}
	for _, o := range []string{"", "a b", "a+b", "tab\there", strings.Repeat("x", 256), "\xff"} {
		if CheckOrigin(o) == nil {
			t.Errorf("CheckOrigin(%q) accepted", o)
		}
	}
}
