package sse

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// block is an Event in comparable form.
type block struct {
	Type, Data, ID, Comment string
	HasData, HasID, Comm    bool
	Retry                   int
}

func collect(t testing.TB, p *Parser, chunks ...[]byte) ([]block, error) {
	t.Helper()
	var out []block
	fn := func(e *Event) error {
		out = append(out, block{Type: e.Type, Data: string(e.Data), ID: e.ID, Comment: string(e.Comment),
			HasData: e.HasData, HasID: e.HasID, Comm: e.IsComment, Retry: e.Retry})
		return nil
	}
	for _, c := range chunks {
		if err := p.Feed(c, fn); err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []block
		end  bool // End reports a discarded block
	}{
		{"one event", "data: hello\n\n", []block{{Data: "hello", HasData: true, Retry: -1}}, false},
		{"typed with id", "event: add\nid: 7\ndata: 1\n\n", []block{{Type: "add", ID: "7", HasID: true, Data: "1", HasData: true, Retry: -1}}, false},
		{"multi-line data", "data: a\ndata:b\ndata:  c\n\n", []block{{Data: "a\nb\n c", HasData: true, Retry: -1}}, false},
		{"CRLF", "data: x\r\n\r\n", []block{{Data: "x", HasData: true, Retry: -1}}, false},
		{"CR", "data: x\r\rdata: y\r\r", []block{{Data: "x", HasData: true, Retry: -1}, {Data: "y", HasData: true, Retry: -1}}, false},
		{"comment", ": keep-alive\n\ndata: x\n\n", []block{{Comment: " keep-alive", Comm: true, Retry: -1}, {Data: "x", HasData: true, Retry: -1}}, false},
		{"field without colon", "data\n\n", []block{{Data: "", HasData: true, Retry: -1}}, false},
		{"empty data dispatches", "data:\n\n", []block{{Data: "", HasData: true, Retry: -1}}, false},
		{"unknown field ignored", "foo: bar\n\n", nil, false},
		{"retry", "retry: 3000\n\n", []block{{Retry: 3000}}, false},
		{"bad retry ignored", "retry: 3s\ndata: x\n\n", []block{{Data: "x", HasData: true, Retry: -1}}, false},
		{"id with NUL ignored", "id: a\x00b\ndata: x\n\n", []block{{Data: "x", HasData: true, Retry: -1}}, false},
		{"byte order mark", "\xEF\xBB\xBFdata: x\n\n", []block{{Data: "x", HasData: true, Retry: -1}}, false},
		{"incomplete block discarded", "data: x\n\ndata: y\n", []block{{Data: "x", HasData: true, Retry: -1}}, true},
		{"blank lines only", "\n\n\r\n", nil, false},
		{"openai chunk", "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
			[]block{{Data: `{"choices":[{"delta":{"content":"Hi"}}]}`, HasData: true, Retry: -1}, {Data: "[DONE]", HasData: true, Retry: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and byte by byte: the same blocks.
			var p Parser
			got, err := collect(t, &p, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if end := p.End(); end != tt.end {
				t.Errorf("End() = %v, want %v", end, tt.end)
			}
			var q Parser
			var chunks [][]byte
			for i := range len(tt.in) {
				chunks = append(chunks, []byte{tt.in[i]})
			}
			got, err = collect(t, &q, chunks...)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("byte by byte: %+v, %v", got, err)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	p := Parser{MaxEventBytes: 64}
	_, err := collect(t, &p, []byte("data: "+strings.Repeat("x", 100)))
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("long line: err = %v", err)
	}
	p = Parser{MaxEventBytes: 64}
	_, err = collect(t, &p, []byte(strings.Repeat("data: xxxxxxxx\n", 10)))
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("many lines: err = %v", err)
	}
	p = Parser{MaxEventBytes: 64}
	if _, err = collect(t, &p, []byte(strings.Repeat("data: xxxxxxxx\n\n", 100))); err != nil {
		t.Fatalf("many small events: %v", err)
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Data: []byte("x"), HasData: true, Retry: -1}, "data: x\n\n"},
		{Event{Type: "error", Data: []byte("a\nb"), HasData: true, Retry: -1}, "event: error\ndata: a\ndata: b\n\n"},
		{Event{ID: "1\n2", HasID: true, Data: []byte("a\r\nb\rc"), HasData: true, Retry: 10}, "id: 1 2\nretry: 10\ndata: a\ndata: b\ndata: c\n\n"},
		{Event{Data: nil, HasData: true, Retry: -1}, "data: \n\n"},
		{Event{Comment: []byte("hi\nthere"), IsComment: true}, ":hi there\n"},
		{Event{Retry: -1}, ""},
	}
	for _, tt := range tests {
		if got := string(AppendEvent(nil, &tt.ev)); got != tt.want {
			t.Errorf("AppendEvent(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
	got := string(AppendError(nil, "blocked \"x\"", "permission_error", "content_blocked", "req-1"))
	want := "event: error\ndata: {\"error\":{\"message\":\"blocked \\\"x\\\"\",\"type\":\"permission_error\",\"code\":\"content_blocked\",\"request_id\":\"req-1\"}}\n\n"
	if got != want {
		t.Errorf("AppendError = %q, want %q", got, want)
	}
}

// FuzzParser: any input, split anywhere, parses without panic to the same
// blocks; every dispatched event written back parses to itself.
func FuzzParser(f *testing.F) {
	f.Add([]byte("event: a\nid: 1\nretry: 5\ndata: x\ndata: y\r\n\r\n: c\rdata: z\n\n"), uint8(3))
	f.Add([]byte("\xEF\xBB\xBFdata: [DONE]\n\n"), uint8(1))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		p := Parser{MaxEventBytes: 4096}
		whole, err := collect(t, &p, in)
		if err != nil && !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("error %v", err)
		}
		q := Parser{MaxEventBytes: 4096}
		n := int(step%16) + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += n {
			chunks = append(chunks, in[i:min(i+n, len(in))])
		}
		split, err2 := collect(t, &q, chunks...)
		if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(whole, split)) {
			t.Fatalf("whole %+v (%v) vs chunks of %d %+v (%v)", whole, err, n, split, err2)
		}
		if err != nil {
			return
		}
		for _, b := range whole {
			ev := Event{Type: b.Type, Data: []byte(b.Data), HasData: b.HasData, ID: b.ID, HasID: b.HasID, Retry: b.Retry,
				Comment: []byte(b.Comment), IsComment: b.Comm}
			enc := AppendEvent(nil, &ev)
			var r Parser
			back, err := collect(t, &r, enc)
			if err != nil || r.End() {
				t.Fatalf("re-parse of %q: %v", enc, err)
			}
			if len(enc) == 0 {
				continue
			}
			if len(back) != 1 || !sameBlock(back[0], b) {
				t.Fatalf("%+v → %q → %+v", b, enc, back)
			}
		}
	})
}

// sameBlock compares what survives writing: CR and LF in a type or id
// become spaces; the parser drops a NUL id, so a written one cannot hold NUL.
func sameBlock(a, b block) bool {
	fix := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	b.Type, b.ID, b.Comment = fix(b.Type), fix(b.ID), fix(b.Comment)
	if b.Type == "" && a.Type == "" {
		return a.Data == b.Data && a.HasData == b.HasData && a.ID == b.ID && a.HasID == b.HasID && a.Retry == b.Retry && a.Comment == b.Comment
	}
	return reflect.DeepEqual(a, b)
}

func ExampleParser() {
	var p Parser
	_ = p.Feed([]byte("event: greet\ndata: hello\ndata: world\n\n"), func(e *Event) error {
		fmt.Printf("%s: %q\n", e.Type, e.Data)
		return nil
	})
	fmt.Print(string(bytes.TrimSpace(AppendEvent(nil, &Event{Data: []byte("x"), HasData: true, Retry: -1}))))
	// Output:
	// greet: "hello\nworld"
	// data: x
}
