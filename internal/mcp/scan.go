package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/sse"
)

// scanResult passes every string, member name and number of a result (tool
// content, resource contents, prompt messages) through the DLP scanner —
// nothing a server sends is exempt — and every "text" through
// the injection detector as third-party content, then carries out the
// exchange's mask rules: a blocked finding returns blocked, masked and
// hashed ones rewrite the string in place (changed; a number becomes the
// masked string, a member name is renamed). Findings are recorded
// in ex.Findings as found in the tool result.
func (g *Gateway) scanResult(ex *gateway.Exchange, result map[string]json.RawMessage) (changed bool, blocked, err error) {
	return g.scanMembers(ex, result, guard.WhereToolResult)
}

// scanMembers is scanResult for the members of any server message (a
// result, or a server request's or notification's params), recording the
// findings as made at where.
func (g *Gateway) scanMembers(ex *gateway.Exchange, result map[string]json.RawMessage, where string) (changed bool, blocked, err error) {
	if g.Scanner == nil && g.Injection == nil {
		return false, nil, nil
	}
	var pol *guard.Policy
	if len(ex.Obligations.Mask) > 0 {
		if pol, err = guard.NewPolicy(ex.Obligations.Mask, g.Key); err != nil {
			return false, nil, err // a rule warden cannot carry out: fail closed
		}
	}
	// Most results have no finding: then there is nothing to record or
	// rewrite, and no need to decode the result into a tree below.
	if !g.resultHasFindings(result) {
		return false, nil, nil
	}
	base := 0
	var all []guard.Finding
	// scan passes one text through the guards, records its findings and
	// returns the text to pass on and whether it differs.
	scan := func(x string, content bool) (string, bool) {
		text := []byte(x)
		fs := g.scanText(text, content)
		if len(fs) == 0 {
			base += len(text)
			return x, false
		}
		if berr := pol.Decide(fs); berr != nil && blocked == nil {
			blocked = berr
		}
		out, rewritten := x, false
		if blocked == nil && pol.Rewrites() {
			if r := pol.Apply(nil, text, fs); !bytes.Equal(r, text) {
				out, rewritten = string(r), true
			}
		}
		for _, f := range fs {
			f.Start, f.End = f.Start+base, f.End+base
			all = append(all, f)
		}
		base += len(text)
		return out, rewritten
	}
	// renameKeys carries out the rewrites of member names.
	renameKeys := func(m map[string]any, renames [][2]string) {
		for _, r := range renames {
			v := m[r[0]]
			delete(m, r[0])
			m[uniqueKey(m, r[1])] = v
		}
	}
	var walk func(v any, key string) any
	walk = func(v any, key string) any {
		switch x := v.(type) {
		case map[string]any:
			var renames [][2]string
			for k, e := range x {
				x[k] = walk(e, k)
				if nk, ok := scan(k, false); ok {
					renames, changed = append(renames, [2]string{k, nk}), true
				}
			}
			renameKeys(x, renames)
		case []any:
			for i, e := range x {
				x[i] = walk(e, key)
			}
		case json.Number:
			// a card or account number need not be a string
			if out, ok := scan(string(x), false); ok {
				changed = true
				return out
			}
		case string:
			if x == "" {
				return x
			}
			if out, ok := scan(x, keyKindOf([]byte(key)) == keyText); ok {
				changed = true
				return out
			}
		}
		return v
	}
	var renames [][2]string
	for k, raw := range result {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if derr := dec.Decode(&v); derr != nil {
			return false, nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, derr, "the MCP server sent an invalid result")
		}
		before := changed
		changed = false
		nv := walk(v, k)
		if changed {
			b, merr := json.Marshal(nv)
			if merr != nil {
				return false, nil, merr
			}
			result[k] = b
		}
		if nk, ok := scan(k, false); ok {
			renames, changed = append(renames, [2]string{k, nk}), true
		}
		changed = changed || before
	}
	for _, r := range renames {
		v := result[r[0]]
		delete(result, r[0])
		result[uniqueKey(result, r[1])] = v
	}
	ex.Findings = guard.AppendGateway(ex.Findings, where, all)
	if blocked != nil {
		return false, blocked, nil
	}
	return changed, nil, nil
}

// uniqueKey returns k, or k with a suffix that no member of m has: two
// member names masked alike must not merge.
func uniqueKey[V any](m map[string]V, k string) string {
	if _, taken := m[k]; !taken {
		return k
	}
	for i := 2; ; i++ {
		c := k + "#" + strconv.Itoa(i)
		if _, taken := m[c]; !taken {
			return c
		}
	}
}

// scanText runs the scanner and, for content texts, the injection
// detector over text.
func (g *Gateway) scanText(text []byte, content bool) []guard.Finding {
	var fs []guard.Finding
	if g.Scanner != nil {
		fs = g.Scanner.Scan(text)
	}
	if content && g.Injection != nil {
		if v := g.Injection(text); v.Attack {
			s, e := len(text), 0
			for _, sp := range v.Spans {
				if sp.Start < 0 || sp.End > len(text) || sp.Start >= sp.End {
					continue
				}
				s, e = min(s, sp.Start), max(e, sp.End)
			}
			if s >= e {
				s, e = 0, len(text)
			}
			score := v.Score
			if !(score >= 0) {
				score = 0
			}
			fs = append(fs, guard.Finding{Guard: guard.GuardInjection, Type: guard.TypeIndirectInjection,
				Class: guard.ClassInjection, Start: s, End: e, Score: min(score, 1)})
		}
	}
	return fs
}

// sseRewriter passes an SSE response through Gateway.handle event by event.
// Comments and events without data pass unchanged; a message warden cannot
// parse ends the stream with a JSON-RPC error for the exchange's request.
type sseRewriter struct {
	src io.ReadCloser
	g   *Gateway
	ex  *gateway.Exchange
	max int

	p    sse.Parser
	out  []byte
	done bool
	err  error // why the stream ended early, for the log
}

func (r *sseRewriter) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if r.p.MaxEventBytes == 0 {
			r.p.MaxEventBytes = r.max
		}
		// The server's bytes are read into p itself, which a Read may use
		// as scratch space (io.Reader): the parser copies what it keeps,
		// and p is overwritten with the output below. This saved a 16 KiB
		// buffer per response.
		n, err := r.src.Read(p)
		if n > 0 {
			if ferr := r.p.Feed(p[:n], r.event); ferr != nil {
				r.fail(ferr)
			}
		}
		if err != nil && !r.done {
			r.p.End()
			r.done = true
			if err != io.EOF {
				r.err = err
			}
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

var errStopped = errors.New("mcp: stream stopped")

func (r *sseRewriter) event(ev *sse.Event) error {
	if r.done {
		return errStopped
	}
	if ev.IsComment || !ev.HasData {
		r.out = sse.AppendEvent(r.out, ev)
		return nil
	}
	data, err := r.g.handle(r.ex, ev.Data)
	if err != nil {
		r.fail(err)
		return errStopped
	}
	if data == nil { // dropped (a finding records it)
		return nil
	}
	r.out = sse.AppendEvent(r.out, &sse.Event{Type: ev.Type, ID: ev.ID, HasID: ev.HasID, Retry: ev.Retry,
		Data: data, HasData: true})
	return nil
}

// fail ends the stream: the exchange's request gets a JSON-RPC error (so
// the client does not wait for an answer that will not come).
func (r *sseRewriter) fail(err error) {
	if r.done {
		return
	}
	if !errors.Is(err, errStopped) {
		r.err = err
	}
	r.done = true
	if r.ex.MCP != nil && r.ex.MCP.ID != nil {
		msg := ErrorResponse(r.ex.MCP.ID, CodeUnavailable, "the MCP server's stream was ended or refused by warden",
			gateway.TypeUpstream, CodeBadUpstream, r.ex.ID)
		r.out = sse.AppendEvent(r.out, &sse.Event{Data: msg, HasData: true, Retry: -1})
	}
}

func (r *sseRewriter) Close() error { return r.src.Close() }
