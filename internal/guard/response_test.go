package guard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
	"github.com/warden-ai/warden/internal/guard/sse"
)

func chatChunk(content string, finish string) string {
	c, _ := json.Marshal(content)
	fr := "null"
	if finish != "" {
		fr = strconv.Quote(finish)
	}
	return `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",` +
		`"choices":[{"index":0,"delta":{"content":` + string(c) + `},"logprobs":null,"finish_reason":` + fr + `}]}` + "\n\n"
}

func chatStream(parts ...string) string {
	var b strings.Builder
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for _, p := range parts {
		b.WriteString(chatChunk(p, ""))
	}
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

// rewrite runs an upstream stream through the rewriter, reading it in
// small pieces, and returns the output.
func rewrite(t *testing.T, opt guard.ResponseOptions, upstream string) (string, *guard.SSERewriter) {
	t.Helper()
	if opt.Scanner == nil {
		opt.Scanner = dlp.New()
	}
	src := io.NopCloser(iotest.HalfReader(strings.NewReader(upstream)))
	rw := guard.NewSSERewriter(src, opt)
	out, err := io.ReadAll(iotest.OneByteReader(rw))
	if err != nil {
		t.Fatal(err)
	}
	return string(out), rw
}

// parsed is an output stream, checked for well-formedness.
type parsed struct {
	events  []sse.Event
	content string // the concatenated chat delta content
	done    bool   // [DONE] seen
	errEv   map[string]any
}

func parse(t *testing.T, out string) parsed {
	t.Helper()
	var p sse.Parser
	var r parsed
	err := p.Feed([]byte(out), func(e *sse.Event) error {
		if e.IsComment || !e.HasData {
			return nil
		}
		ev := *e
		ev.Data = bytes.Clone(e.Data)
		r.events = append(r.events, ev)
		switch {
		case string(e.Data) == "[DONE]":
			r.done = true
		case e.Type == "error":
			if err := json.Unmarshal(e.Data, &r.errEv); err != nil {
				t.Fatalf("error event is not JSON: %q", e.Data)
			}
		default:
			var v struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
				Type  string `json:"type"`
				Delta string `json:"delta"`
			}
			if err := json.Unmarshal(e.Data, &v); err != nil {
				t.Fatalf("event data is not JSON: %q", e.Data)
			}
			for _, c := range v.Choices {
				r.content += c.Delta.Content
			}
			if strings.HasSuffix(v.Type, ".delta") {
				r.content += v.Delta
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	if p.End() {
		t.Fatalf("output ends inside an event:\n%q", out)
	}
	return r
}

func TestSSEChatMasksAcrossEvents(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask", "email": "hash"}, tenantKey)
	// The card and the address are split over several events.
	up := chatStream("Sure. Your card ", "4111 11", "11 1111 ", "1111 is on file; ", "mail ja", "ne@exam", "ple.com", " for help.")
	out, rw := rewrite(t, guard.ResponseOptions{Policy: p, RequestID: "req-1"}, up)
	r := parse(t, out)
	want := "Sure. Your card [PAYMENT_CARD] is on file; mail [EMAIL:"
	if !strings.HasPrefix(r.content, want) || !strings.HasSuffix(r.content, "] for help.") {
		t.Fatalf("content %q", r.content)
	}
	for _, leak := range []string{"4111", "1111", "jane", "example"} {
		if strings.Contains(out, leak) {
			t.Fatalf("%q leaked:\n%s", leak, out)
		}
	}
	if !r.done || rw.Err() != nil {
		t.Fatalf("done %v err %v", r.done, rw.Err())
	}
	// role, 8 deltas, the held "help." in a copy of the last delta (the
	// finish chunk has no content field), finish, [DONE].
	if len(r.events) != 12 {
		t.Fatalf("%d events:\n%s", len(r.events), out)
	}
	fs := rw.Findings()
	if len(fs) != 2 || fs[0].Type != "payment_card" || fs[1].Type != "email" || fs[1].Action != guard.ActionHash {
		t.Fatalf("findings %+v", fs)
	}
}

// TestSSEHeldAtEnd: text held when the stream ends without a finish
// reason or [DONE] is released in a copy of its last event.
func TestSSEHeldAtEnd(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	up := chatChunk("call me on +44 20 ", "") + chatChunk("7946 0958", "")
	out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
	r := parse(t, out)
	if r.content != "call me on [PHONE]" || len(r.events) != 3 {
		t.Fatalf("content %q in %d events:\n%s", r.content, len(r.events), out)
	}
}

func TestSSEFinishReleasesHeld(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	up := chatChunk("ip 10.0.0", "") + chatChunk(".1", "") + chatChunk("", "stop") + "data: [DONE]\n\n"
	out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
	r := parse(t, out)
	if r.content != "ip [IPV4]" {
		t.Fatalf("content %q:\n%s", r.content, out)
	}
	// The held text comes before the finish chunk.
	last := string(r.events[len(r.events)-2].Data)
	if !strings.Contains(last, `"finish_reason":"stop"`) {
		t.Fatalf("finish chunk is not last:\n%s", out)
	}
}

func TestSSEBlock(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask", "secret": "block"}, nil)
	up := chatStream("here is the key AKIAIOSF", "ODNN7EXAMPLE and the rest", " of the answer")
	out, rw := rewrite(t, guard.ResponseOptions{Policy: p, RequestID: "req-9"}, up)
	r := parse(t, out)
	if strings.Contains(out, "AKIA") || strings.Contains(out, "EXAMPLE") {
		t.Fatalf("key leaked:\n%s", out)
	}
	if r.errEv == nil || r.done {
		t.Fatalf("want a final error event and no [DONE]:\n%s", out)
	}
	e := r.errEv["error"].(map[string]any)
	if e["code"] != "content_blocked" || e["type"] != "permission_error" || e["request_id"] != "req-9" {
		t.Fatalf("error event %v", e)
	}
	if last := r.events[len(r.events)-1]; last.Type != "error" {
		t.Fatalf("error event is not last:\n%s", out)
	}
	if !errors.Is(rw.Err(), guard.ErrBlocked) {
		t.Fatalf("Err() = %v", rw.Err())
	}
}

func TestSSEOutputLimit(t *testing.T) {
	up := chatStream(strings.Repeat("word ", 10), strings.Repeat("word ", 10), strings.Repeat("word ", 10))
	out, rw := rewrite(t, guard.ResponseOptions{MaxContentBytes: 80}, up)
	r := parse(t, out)
	if r.errEv == nil || r.errEv["error"].(map[string]any)["code"] != "output_too_large" || !errors.Is(rw.Err(), guard.ErrOutputTooLarge) {
		t.Fatalf("want output_too_large:\n%s", out)
	}
	if len(r.content) > 80 {
		t.Fatalf("%d bytes of content passed", len(r.content))
	}
}

func TestSSEEventTooLarge(t *testing.T) {
	up := chatChunk("ok", "") + "data: " + strings.Repeat("x", 5000) + "\n\n"
	out, rw := rewrite(t, guard.ResponseOptions{MaxEventBytes: 1024}, up)
	r := parse(t, out)
	if r.content != "ok" || r.errEv == nil || !errors.Is(rw.Err(), sse.ErrEventTooLarge) {
		t.Fatalf("content %q err %v:\n%s", r.content, rw.Err(), out)
	}
}

type failingReader struct {
	data string
	read bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.read {
		f.read = true
		return copy(p, f.data), nil
	}
	return 0, errors.New("connection reset")
}

func TestSSEUpstreamError(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	src := io.NopCloser(&failingReader{data: chatChunk("mail jane@example.com", "") + `data: {"choices":[{"delta":{"content":"unfinished`})
	rw := guard.NewSSERewriter(src, guard.ResponseOptions{Scanner: dlp.New(), Policy: p})
	out, err := io.ReadAll(rw)
	if err != nil {
		t.Fatal(err)
	}
	r := parse(t, string(out))
	if r.content != "mail [EMAIL]" || r.errEv["error"].(map[string]any)["code"] != "upstream_aborted" || rw.Err() == nil {
		t.Fatalf("content %q err %v:\n%s", r.content, rw.Err(), out)
	}
}

func TestSSEPassThrough(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	up := ": ping\r\nretry: 2000\r\n\r\nid: 5\r\nevent: note\r\ndata: plain text to jane@example.com\r\ndata: second line\r\n\r\n" +
		"data: {\"error\":{\"message\":\"bad request from 10.0.0.1\"}}\n\n"
	out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
	want := ": ping\nretry: 2000\n\nevent: note\nid: 5\ndata: plain text to [EMAIL]\ndata: second line\n\n" +
		"data: {\"error\":{\"message\":\"bad request from [IPV4]\"}}\n\n"
	if out != want {
		t.Fatalf("got\n%q\nwant\n%q", out, want)
	}
}

func TestSSELogprobsAndTools(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask"}, nil)
	up := `data: {"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[{"token":"jane","logprob":-0.1}]}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"send","arguments":"{\"to\":\"jane@exa"}}]}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"mple.com\"}"}}]}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n"
	out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
	parse(t, out)
	if strings.Contains(out, "jane") || !strings.Contains(out, `"logprobs":null`) {
		t.Fatalf("output:\n%s", out)
	}
	var args string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, `"arguments":`); i >= 0 {
			var s string
			rest := line[i+len(`"arguments":`):]
			_ = json.NewDecoder(strings.NewReader(rest)).Decode(&s)
			args += s
		}
	}
	if args != `{"to":"[EMAIL]"}` {
		t.Fatalf("arguments %q:\n%s", args, out)
	}
}

func TestSSEResponsesAPI(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "hash"}, tenantKey)
	ev := func(typ, body string) string { return "event: " + typ + "\ndata: " + body + "\n\n" }
	delta := func(d string, seq int) string {
		b, _ := json.Marshal(d)
		return ev("response.output_text.delta", `{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":`+string(b)+`,"logprobs":[],"sequence_number":`+strconv.Itoa(seq)+`}`)
	}
	full := "Write to jane@example.com today."
	up := ev("response.created", `{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}`) +
		delta("Write to ja", 1) + delta("ne@example.", 2) + delta("com today", 3) + delta(".", 4) +
		ev("response.output_text.done", `{"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":"`+full+`"}`) +
		ev("response.completed", `{"type":"response.completed","response":{"id":"resp_1","output":[{"content":[{"type":"output_text","text":"`+full+`"}]}]}}`)
	out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
	r := parse(t, out)
	if strings.Contains(out, "jane") {
		t.Fatalf("leak:\n%s", out)
	}
	// The deltas add up to the masked full text of the done event.
	var done struct {
		Text string `json:"text"`
	}
	for _, e := range r.events {
		if e.Type == "response.output_text.done" {
			_ = json.Unmarshal(e.Data, &done)
		}
	}
	if r.content != done.Text || !strings.HasPrefix(done.Text, "Write to [EMAIL:") {
		t.Fatalf("deltas %q, done text %q:\n%s", r.content, done.Text, out)
	}
}

func TestInspectResponseJSON(t *testing.T) {
	p := mustPolicy(t, map[string]string{"pii": "mask", "payment_card": "block"}, nil)
	mk := func(ct, body string) *http.Response {
		h := http.Header{}
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
	}
	opt := guard.ResponseOptions{Scanner: dlp.New(), Policy: p}

	res := mk("application/json", `{"choices":[{"message":{"role":"assistant","content":"mail jane@example.com"}}]}`)
	in, err := guard.InspectResponse(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != `{"choices":[{"message":{"role":"assistant","content":"mail [EMAIL]"}}]}` ||
		res.Header.Get("Content-Length") != strconv.Itoa(len(body)) || res.ContentLength != int64(len(body)) {
		t.Fatalf("body %s, length %s", body, res.Header.Get("Content-Length"))
	}
	if fs := in.Findings(); len(fs) != 1 || fs[0].Action != guard.ActionMask {
		t.Fatalf("findings %+v", fs)
	}

	_, err = guard.InspectResponse(mk("application/json", `{"output_text":"card 4111 1111 1111 1111"}`), opt)
	if !errors.Is(err, guard.ErrBlocked) {
		t.Fatalf("err = %v, want blocked", err)
	}
	_, err = guard.InspectResponse(mk("application/json", `{"truncated`), opt)
	if err == nil {
		t.Fatal("invalid JSON accepted")
	}
	gz := mk("application/json", "\x1f\x8b...")
	gz.Header.Set("Content-Encoding", "gzip")
	if _, err = guard.InspectResponse(gz, opt); err == nil {
		t.Fatal("compressed body accepted")
	}
	big := opt
	big.MaxBodyBytes = 10
	if _, err = guard.InspectResponse(mk("text/plain", "more than ten bytes"), big); err == nil {
		t.Fatal("oversized body accepted")
	}
	img := mk("image/png", "\x89PNG jane@example.com")
	if _, err = guard.InspectResponse(img, opt); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(img.Body); !bytes.Contains(b, []byte("jane")) {
		t.Fatal("binary body was changed")
	}

	stream := mk("text/event-stream; charset=utf-8", chatStream("mail jane@", "example.com"))
	in, err = guard.InspectResponse(stream, opt)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(stream.Body)
	if stream.ContentLength != -1 || stream.Header.Get("Content-Length") != "" || parse(t, string(out)).content != "mail [EMAIL]" {
		t.Fatalf("stream %q", out)
	}
	if len(in.Findings()) != 1 || in.Err() != nil {
		t.Fatalf("findings %+v err %v", in.Findings(), in.Err())
	}
}

// FuzzSSERewriter: whatever the upstream sends, the output is well-formed
// SSE that ends on an event boundary.
func FuzzSSERewriter(f *testing.F) {
	f.Add([]byte(chatStream("mail ja", "ne@example.com", " 4111 1111 1111 1111")))
	f.Add([]byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"m\",\"delta\":\"10.0.\"}\n\n"))
	f.Add([]byte(": c\r\ndata: x\r\rdata: {\"error\":{}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"AKIAIOSFODNN7EXAMPLE\"},\"finish_reason\":\"stop\"}]}\n\n"))
	p := mustPolicy(f, map[string]string{"pii": "hash", "secret": "block"}, tenantKey)
	f.Fuzz(func(t *testing.T, up []byte) {
		rw := guard.NewSSERewriter(io.NopCloser(iotest.HalfReader(bytes.NewReader(up))),
			guard.ResponseOptions{Scanner: dlp.New(), Policy: p, MaxEventBytes: 2048, MaxContentBytes: 4096})
		out, err := io.ReadAll(rw)
		if err != nil {
			t.Fatal(err)
		}
		var q sse.Parser
		if err := q.Feed(out, func(*sse.Event) error { return nil }); err != nil || q.End() {
			t.Fatalf("output is not well-formed SSE (%v):\n%q", err, out)
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("output does not end a line: %q", out)
		}
	})
}

// FuzzSSESplit: a detected value split over chat events at any points
// never reaches the output whole.
func FuzzSSESplit(f *testing.F) {
	f.Add("prefix ", " suffix", uint8(3), uint8(9), uint8(0))
	f.Add("", "", uint8(1), uint8(2), uint8(4))
	values := []string{"4111 1111 1111 1111", "jane.roe@example.com", "AKIAIOSFODNN7EXAMPLE", "+44 20 7946 0958",
		"DE89 3704 0044 0532 0130 00", "192.168.100.200", "123-45-6789"}
	p := mustPolicy(f, map[string]string{"pii": "mask", "secret": "mask"}, nil)
	f.Fuzz(func(t *testing.T, before, after string, c1, c2, which uint8) {
		v := values[int(which)%len(values)]
		// The value must stand as a word of its own for a detector to see it.
		text := before + " " + v + " " + after
		if !utf8Valid(text) || len(text) > 2000 {
			return
		}
		if fs := dlp.New().Scan([]byte(text)); !covers(fs, strings.Index(text, v), len(v)) {
			return // the surroundings make it something else (a longer number, say)
		}
		i, j := int(c1)%(len(text)+1), int(c2)%(len(text)+1)
		if i > j {
			i, j = j, i
		}
		up := chatStream(text[:i], text[i:j], text[j:])
		out, _ := rewrite(t, guard.ResponseOptions{Policy: p}, up)
		r := parse(t, out)
		if strings.Contains(r.content, v) || strings.Contains(out, v) {
			t.Fatalf("%q split at %d,%d leaked:\n%s", text, i, j, out)
		}
	})
}

func covers(fs []guard.Finding, start, n int) bool {
	for _, f := range fs {
		if f.Start <= start && f.End >= start+n {
			return true
		}
	}
	return false
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
