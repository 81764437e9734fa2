package mcp

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// FuzzParse: Parse never panics, and what it accepts is one JSON object
// that encoding/json decodes too, with a method or a result/error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":null}]}}}`,
		`{"jsonrpc":"2.0","id":"x","result":{"tools":[]}}`,
		`[{"jsonrpc":"2.0"}]`, `{"a":1,"A":2}`, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, pe := Parse(data)
		if pe != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if m.Method == "" && m.Result == nil && m.Error == nil {
			t.Fatalf("accepted a message with neither method nor result/error: %q", data)
		}
		if m.Method != "" {
			_, _, _ = Classify(m)
		}
	})
}

// FuzzSSE: the SSE rewriter never panics, whatever the server streams and
// however it is split, and never passes on an event it could not parse.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"a secret\"}]}}\n\n"), uint8(3))
	f.Add([]byte(": c\r\n\r\nevent: x\ndata: {}\n\n"), uint8(1))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"t\"}]}}\n\n"), uint8(9))
	f.Fuzz(func(t *testing.T, stream []byte, split uint8) {
		pins, _ := OpenPinStore("", PinTOFU)
		g := &Gateway{Scanner: fakeScanner{}, Pins: pins}
		for _, action := range []string{ActionToolsCall, ActionToolsList} {
			ex := newExchange(action, "1")
			ex.Obligations.Mask = map[string]string{"secret": "mask"}
			r := &sseRewriter{src: io.NopCloser(&chunked{b: stream, n: int(split%16) + 1}), g: g, ex: ex, max: 4096}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("a secret")) && bytes.Contains(stream, []byte(`"id":1`)) && r.err == nil &&
				action == ActionToolsCall && json.Valid(bytes.TrimPrefix(bytes.TrimSpace(stream), []byte("data: "))) {
				t.Fatalf("unmasked secret passed: %q", out)
			}
		}
	})
}

type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
