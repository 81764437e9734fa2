package guard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Finding types of the prompt-injection guard (ClassInjection).
const (
	// TypeInjection is an injection in text the caller wrote: a user,
	// system or developer message, a prompt or input field.
	TypeInjection = "injection"
	// TypeIndirectInjection is an injection planted in third-party content
	// the model will read: a tool or function result, a tool_result part,
	// a field the config marks as documents.
	TypeIndirectInjection = "indirect_injection"
)

// TextKind is whose words a text of a request is, which decides how a
// prompt-injection detector reads it.
type TextKind uint8

// Text kinds.
const (
	KindPrompt   TextKind = iota + 1 // the caller's own words
	KindDocument                     // third-party content: scored as a document
)

func (k TextKind) String() string {
	switch k {
	case KindPrompt:
		return "prompt"
	case KindDocument:
		return "document"
	}
	return "unknown"
}

// Span is one piece of a detector's evidence: the rule and the byte span
// of the text it matched.
type Span struct {
	Rule       string
	Start, End int
}

// Verdict is a prompt-injection detector's answer for one text.
type Verdict struct {
	Score  float64 // 0..1
	Attack bool    // Score reached the detector's threshold
	Spans  []Span  // evidence; byte offsets in the text scored
}

// Text is one string of a request body that a model reads: its kind and
// the span of its raw content in the body (between the quotes for JSON).
type Text struct {
	Kind       TextKind
	Start, End int
}

// textKeys are the member names whose string values (or arrays of strings)
// are text a model reads.
var textKeys = map[string]bool{
	"content": true, "text": true, "output": true, "input": true, "prompt": true,
	"instructions": true, "system": true, "result": true,
}

// documentTypes are the "type" values of items and content parts that
// carry third-party content: OpenAI Responses tool outputs, Anthropic-style
// tool_result parts, MCP results.
var documentTypes = map[string]bool{
	"function_call_output": true, "custom_tool_call_output": true, "local_shell_call_output": true,
	"computer_call_output": true, "mcp_call": true, "mcp_tool_result": true, "tool_result": true,
	"web_search_result": true, "file_search_result": true, "document": true,
}

// documentRoles are message roles whose content is third-party content.
var documentRoles = map[string]bool{"tool": true, "function": true, "ipython": true}

// skippedTopLevel are request members that configure the model rather
// than speak to it (tool definitions, schemas, metadata).
var skippedTopLevel = map[string]bool{
	"tools": true, "functions": true, "tool_choice": true, "response_format": true,
	"metadata": true, "model": true, "user": true, "stop": true, "logit_bias": true,
}

// RequestTextOptions say how to read a request body.
type RequestTextOptions struct {
	// Action is the gateway action ("chat.completions", "responses",
	// "embeddings", …): the input of embeddings is content to be indexed
	// and retrieved later, so it is read as documents.
	Action string
	// DocumentFields are member names whose string values, at any depth,
	// are third-party content (for example "documents" or "context" of a
	// retrieval-augmented API).
	DocumentFields []string
}

// RequestTexts finds the texts a model reads in a request body and says
// whose they are. JSON bodies are read by their structure: messages and
// their content parts (by role: tool and function messages are documents,
// the others prompts), prompt, input and instructions fields, Responses
// API input items (tool outputs are documents), any part or item whose
// type is a tool result, and the configured document fields. Tool
// definitions, schemas and metadata are not read. A text body is one
// prompt. Bad input gives an *InputError.
func RequestTexts(f Format, body []byte, opt RequestTextOptions) ([]Text, error) {
	switch f {
	case FormatText:
		if !utf8.Valid(body) {
			return nil, errNotUTF8()
		}
		if len(body) == 0 {
			return nil, nil
		}
		return []Text{{Kind: KindPrompt, Start: 0, End: len(body)}}, nil
	case FormatJSON:
		return jsonTexts(body, opt)
	}
	return nil, fmt.Errorf("guard: unknown format %d", f)
}

type candidate struct {
	s, e      int
	ancestors []string // signatures of the enclosing objects, innermost last
	doc       bool     // under a document field or an embeddings input
}

func jsonTexts(body []byte, opt RequestTextOptions) ([]Text, error) {
	if !utf8.Valid(body) {
		return nil, errNotUTF8()
	}
	if strings.HasPrefix(opt.Action, mcpActionPrefix) {
		return mcpTexts(body, opt.Action)
	}
	docFields := make(map[string]bool, len(opt.DocumentFields))
	for _, f := range opt.DocumentFields {
		docFields[f] = true
	}
	type objInfo struct{ role, typ string }
	info := map[string]*objInfo{}
	var cands []candidate
	var sig []byte
	sigs := func(p []pathElem) []string {
		// The signature of the object at p[:k] for every k whose element
		// is an object member (the containers that can have a role/type).
		out := make([]string, 0, len(p))
		sig = sig[:0]
		for k := 0; k < len(p); k++ {
			if p[k].key != nil {
				out = append(out, string(sig))
			}
			if p[k].key != nil {
				sig = append(sig, p[k].key...)
			} else {
				sig = strconv.AppendInt(append(sig, '#'), int64(p[k].index), 10)
			}
			sig = append(sig, 0)
		}
		return out
	}
	err := walkJSON(body, func(p []pathElem, v jsonValue) error {
		if v.kind != jString || len(p) == 0 {
			return nil
		}
		if p[0].key != nil && skippedTopLevel[string(p[0].key)] {
			return nil
		}
		n := len(p)
		if k := p[n-1].key; k != nil && (string(k) == "role" || string(k) == "type") && !v.esc && v.e-v.s <= 64 {
			anc := sigs(p)
			o := info[anc[len(anc)-1]]
			if o == nil {
				o = &objInfo{}
				info[anc[len(anc)-1]] = o
			}
			if string(k) == "role" {
				o.role = string(body[v.s:v.e])
			} else {
				o.typ = string(body[v.s:v.e])
			}
			return nil
		}
		if v.s == v.e {
			return nil
		}
		// Its own member name, or for an array element the member that
		// holds the array directly.
		var key []byte
		switch {
		case p[n-1].key != nil:
			key = p[n-1].key
		case n >= 2 && p[n-2].key != nil:
			key = p[n-2].key
		default:
			return nil
		}
		doc := false
		for _, e := range p {
			if e.key != nil && docFields[string(e.key)] {
				doc = true
				break
			}
		}
		if !doc && !textKeys[string(key)] {
			return nil
		}
		if opt.Action == "embeddings" && p[0].key != nil && string(p[0].key) == "input" {
			doc = true
		}
		cands = append(cands, candidate{s: v.s, e: v.e, ancestors: sigs(p), doc: doc})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Text, 0, len(cands))
	for _, c := range cands {
		kind := KindPrompt
		if c.doc {
			kind = KindDocument
		} else {
			for _, a := range c.ancestors {
				if o := info[a]; o != nil && (documentRoles[o.role] || documentTypes[o.typ]) {
					kind = KindDocument
					break
				}
			}
		}
		out = append(out, Text{Kind: kind, Start: c.s, End: c.e})
	}
	return out, nil
}

// mcpActionPrefix starts the gateway actions of MCP messages (api: mcp).
const mcpActionPrefix = "mcp."

// mcpArgumentActions are the MCP actions whose params.arguments reach a
// tool or prompt template: tools/call and prompts/get.
var mcpArgumentActions = map[string]bool{"mcp.tools.call": true, "mcp.prompts.get": true}

// mcpTexts reads an MCP message (a JSON-RPC request of an agent to a tool
// server, docs/mcp.md). Nothing in it is a user's prompt to a model: the
// agent writes tool arguments, and where they came from is unknown (the
// user, a model, an earlier tool result). So every non-empty string value
// under params.arguments of a tools/call or prompts/get, at any depth, is
// scored as third-party content (KindDocument, TypeIndirectInjection): the
// document detector, tuned for text that is not the caller's instruction,
// still catches instructions planted in what a tool will act on or store.
// The names and the protocol's own members (method, name, clientInfo, …)
// are not text; other MCP messages have none. The tool's results are
// scored as documents by the MCP gateway.
func mcpTexts(body []byte, action string) ([]Text, error) {
	if !mcpArgumentActions[action] {
		return nil, walkJSON(body, func([]pathElem, jsonValue) error { return nil })
	}
	var out []Text
	err := walkJSON(body, func(p []pathElem, v jsonValue) error {
		if v.kind != jString || v.s == v.e || len(p) < 3 || p[0].key == nil || p[1].key == nil ||
			string(p[0].key) != "params" || string(p[1].key) != "arguments" {
			return nil
		}
		out = append(out, Text{Kind: KindDocument, Start: v.s, End: v.e})
		return nil
	})
	return out, err
}

// InjectionGuard scores the texts of a request with a prompt-injection
// detector, each as what it is: the caller's words with Prompt, third-party
// content with Document. It reports one finding per text that is an
// attack, of TypeInjection or TypeIndirectInjection and ClassInjection,
// spanning the detector's evidence (the whole text when it gave none).
type InjectionGuard struct {
	Prompt   func(text []byte) Verdict // required
	Document func(text []byte) Verdict // required
	// DocumentFields: see RequestTextOptions.
	DocumentFields []string
}

// Guard name of injection findings.
const GuardInjection = "injection"

// ScanRequest finds injections in a request body in format f for the
// gateway action. Offsets are byte offsets in body, inside one string's
// content for JSON. Bad input gives an *InputError.
func (g *InjectionGuard) ScanRequest(action string, f Format, body []byte) ([]Finding, error) {
	if g == nil || g.Prompt == nil || g.Document == nil {
		return nil, fmt.Errorf("guard: injection guard without a detector")
	}
	texts, err := RequestTexts(f, body, RequestTextOptions{Action: action, DocumentFields: g.DocumentFields})
	if err != nil {
		return nil, err
	}
	var out []Finding
	var scratch []byte
	for _, t := range texts {
		raw := body[t.Start:t.End]
		text := raw
		esc := f == FormatJSON && slices.Contains(raw, '\\')
		if esc {
			scratch = decodeString(scratch[:0], raw)
			text = scratch
		}
		detect, typ := g.Prompt, TypeInjection
		if t.Kind == KindDocument {
			detect, typ = g.Document, TypeIndirectInjection
		}
		v := detect(text)
		if !v.Attack {
			continue
		}
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
		if esc {
			s, e = rawOffset(raw, s, false), rawOffset(raw, e, true)
		}
		out = append(out, Finding{Guard: GuardInjection, Type: typ, Class: ClassInjection,
			Start: t.Start + s, End: t.Start + e, Score: clamp01(v.Score), Action: ActionFlag})
	}
	sortFindings(out)
	return out, nil
}

func clamp01(x float64) float64 {
	if !(x >= 0) { // NaN too
		return 0
	}
	return min(x, 1)
}
