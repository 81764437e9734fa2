package limit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fast tokenizer (pretok.go, bpe.go) must count exactly as
// tiktoken-go does. These tests compare the two on a large, varied corpus
// (and FuzzTokenizerEquivalence on whatever the fuzzer finds).

var equivModels = []string{"gpt-4o", "gpt-4"} // o200k_base, cl100k_base

// fragments of every kind of text the tokenizer meets.
var fragments = []string{
	// English, contractions in every case, punctuation
	"The quick brown fox jumps over the lazy dog.", "I'm", "you're", "they've", "he'll", "she'd", "it's", "don't",
	"DON'T", "I'M", "You'Re", "WE'VE", "they'LL", "'s", "'S", "'t", "'re", "'Ve", "'m", "'ll", "'d", "'x", "''", "'",
	"rock'n'roll", "O'Neil", "McDonald's", "naïve café", "Hello, World!", "e.g.", "...", "?!", "—", "–", "“quoted”",
	"‘single’", "don’t", "CamelCaseIdentifier", "snake_case_name", "SCREAMING_CASE", "HTTPServer", "iPhone", "eBay",
	"ǅungla", "ǈ", "Dž", "ʰʲʷ", "ˈstress", "ᵃᵇᶜ", "ﬁ ligature", "Straße", "ΣΊΣΥΦΟΣ", "İstanbul", "ıi", "K", "ſ",
	// code
	"func main() {\n\tfmt.Println(\"hi\")\n}\n", "for (int i = 0; i < n; i++) { x += a[i]; }",
	"def f(x):\n    return x ** 2  # square\n", "const re = /^[a-z]+$/i;", "<div class=\"x\">a &amp; b</div>",
	"SELECT * FROM users WHERE id = 42;", "#include <stdio.h>", "a->b", "x != y && y >= z || !w", "::", "=>", "//",
	"/* comment */", "path/to/file.go", "https://example.com/a/b?c=d&e=f#g", "C:\\Windows\\System32", "@@ -1,3 +1,4 @@",
	"$ENV{HOME}", "`backticks`", "0x1F600", "1e-9", "3.14159", "-42", "1,000,000", "2024-05-13T12:00:00Z",
	// JSON
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, `[{"role":"user","content":"hi"}]`, `"\u00e9\n"`, "{}", "[]",
	// numbers
	"12345678901234567890", "0", "007", "١٢٣٤٥", "०१२३", "²³¹", "½¾", "ⅫⅣ", "①②③", "𝟘𝟙𝟚", "12abc34", "a1b2c3",
	// emoji
	"😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "🏳️‍🌈", "✈︎", "🙂🙃😉", "#️⃣", "🤖 robot", "© ® ™",
	// CJK and others
	"日本語のテキストです。", "中文文本，标点符号。", "한국어 텍스트입니다", "カタカナ ひらがな", "漢字かな交じり文",
	"𠀀𠀁𪚥", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３",
	// Arabic, Hebrew (marks), Indic, Thai, others
	"مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "ﷺ", "שָׁלוֹם עוֹלָם", "नमस्ते दुनिया", "क़ि", "ภาษาไทย", "ქართული",
	"Привет, мир!", "Ελληνικά", "Tiếng Việt có dấu", "ꦧꦱꦗꦮ", "ᚠᚢᚦ", "e\u0301", "\u0301", "a\u0300\u0301\u0302",
	"\u0300abc", "A\u0301B", "\u0903x", "\u200d", "\u200b", "\ufeff", "\u00ad", "\u034f",
	// whitespace
	" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \n \n ", "\v", "\f", "\u0085",
	"\u00a0", "\u00a0\u00a0", "\u2028", "\u2029", "\u3000", "\u2003\u2003", "\u1680", "\u180e", "\u202f", " \t \n\t",
	"\n\n\n\n\n", "                ", "\t \u00a0x", " /", " /\n/", "!/\n\r/", "x/\n",
	// special tokens as text
	"<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>",
}

// invalid UTF-8 and other odd bytes.
var oddBytes = []string{"\xff", "\xfe\xff", "\xc3", "\xc3(", "\xe2\x82", "\xe2\x82(", "\xed\xa0\x80", "\xed\xbf\xbf",
	"\xf0\x9f\x98", "\xf4\x90\x80\x80", "\xc0\xaf", "\x80\x80", "\x00", "\x01\x02", "\x7f", "\uFFFD", "a\xffb"}

// alphabet for random strings: runes of every class the patterns tell
// apart, weighted toward the tricky ones.
var alphabet = []rune("aZ'sStTrRvVlLmMdDeE0179 \t\n\r\v\f/.,!?-_\"(){}[]<>#@$%^&*+=|\\~`:;" +
	"é\u0301\u0300\u0903\u093fǅǈʰˈᵃ\u00a0\u2028\u3000\u0085\u200b\u200dİK日本語한글カナابت\u064eשׁ١٢²½Ⅻ😀👍🏽🇫\ufe0f" +
	"ΣσςДд\U0001D7D8\U00020000\U000E0100\u00ad\u180e")

func randomText(r *rand.Rand) string {
	var b strings.Builder
	n := r.IntN(40)
	for range n {
		switch r.IntN(10) {
		case 0, 1, 2:
			b.WriteString(fragments[r.IntN(len(fragments))])
		case 3:
			b.WriteString(oddBytes[r.IntN(len(oddBytes))])
		case 4:
			b.WriteString(strings.Repeat(string(alphabet[r.IntN(len(alphabet))]), 1+r.IntN(6)))
		default:
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
	}
	return b.String()
}

// equivCorpus is deterministic: the fragments alone, in pairs, and
// random mixtures of fragments, odd bytes and runes.
func equivCorpus() []string {
	var c []string
	c = append(c, fragments...)
	c = append(c, oddBytes...)
	for i, a := range fragments {
		b := fragments[(i*7+3)%len(fragments)]
		c = append(c, a+b, a+" "+b, a+"\n"+b, " "+a, a+"  ", strings.ToUpper(a), a+"'s", a+"'LL")
	}
	r := rand.New(rand.NewPCG(8, 2024))
	for range 12000 {
		c = append(c, randomText(r))
	}
	// random bytes
	for range 2000 {
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		c = append(c, string(b))
	}
	// long texts: prose, code, whitespace and letter runs (long pieces
	// go through the heap merge)
	prose := strings.Repeat("It's a long established fact that a reader will be distracted by the readable content. ", 40)
	c = append(c, prose, strings.Repeat("x", 700), strings.Repeat("ab", 400), strings.Repeat(" ", 600),
		strings.Repeat("\n", 300)+"x", strings.Repeat("日本", 300), strings.Repeat("😀", 200),
		strings.Repeat("1234567890", 50), strings.Repeat("!@#$", 150), "QUJD"+strings.Repeat("QUJDRA", 300),
		strings.Repeat("é\u0301", 200), strings.Repeat("ab\xffcd", 100))
	return c
}

// TestTokenizerEquivalence: the fast count equals tiktoken-go's for every
// text of the corpus, in both encodings; and each piece of the fast
// pre-tokenizer ends on one of tiktoken-go's token boundaries.
func TestTokenizerEquivalence(t *testing.T) {
	corpus := equivCorpus()
	if testing.Short() {
		corpus = corpus[:2000]
	}
	bad := 0
	for _, model := range equivModels {
		enc := testTok.encs[EncodingFor(model)]
		for _, text := range corpus {
			fast, slow := testTok.Count(model, text), testTok.countSlow(model, text)
			if fast != slow {
				bad++
				if bad <= 20 {
					t.Errorf("%s: Count(%q) = %d, tiktoken-go %d; pieces %q", model, text, fast, slow, pieces(enc.fast, text))
				}
				continue
			}
			checkBoundaries(t, enc, text)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d counts differ", bad, 2*len(corpus))
	}
	t.Logf("%d texts, %d bytes, equal in both encodings", len(corpus), func() (n int) {
		for _, s := range corpus {
			n += len(s)
		}
		return
	}())
}

// pieces splits text as the fast pre-tokenizer does.
func pieces(e *fastEncoder, text string) []string {
	text = string(appendValid(nil, text))
	var p []string
	for i := 0; i < len(text); {
		j := e.next(text, i)
		p = append(p, text[i:j])
		i = j
	}
	return p
}

// checkBoundaries: every piece ends where a token of tiktoken-go ends,
// with as many tokens in it as the fast encoder counts.
func checkBoundaries(t *testing.T, enc *encoding, text string) {
	t.Helper()
	valid := string(appendValid(nil, text))
	ends := map[int]int{} // byte offset → tokens before it
	off := 0
	for i, tok := range enc.tk.EncodeOrdinary(text) {
		off += len(enc.tk.Decode([]int{tok}))
		ends[off] = i + 1
	}
	off, before := 0, 0
	for _, p := range pieces(enc.fast, text) {
		off += len(p)
		n, ok := ends[off]
		if !ok || n-before != enc.fast.pieceTokens(p) {
			t.Errorf("%q: piece %q (ending at %d) is not %d tokens of tiktoken-go (%v)", valid, p, off, enc.fast.pieceTokens(p), ok)
			return
		}
		before = n
	}
}

// TestClassTable: the table of rune classes is what the unicode tables say.
func TestClassTable(t *testing.T) {
	classOnce.Do(buildClassTable)
	for r := rune(0); r < classTableSize; r++ {
		if classTable[r] != classOf(r) {
			t.Fatalf("class of %U: table %08b, unicode %08b", r, classTable[r], classOf(r))
		}
	}
}

// TestMergeHeap: the heap merge of long pieces merges as the quadratic
// one (tiktoken-go's algorithm).
func TestMergeHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, model := range equivModels {
		e := testTok.encs[EncodingFor(model)].fast
		for i := range 300 {
			var b strings.Builder
			for b.Len() < 2+i {
				b.WriteRune(alphabet[r.IntN(len(alphabet))])
			}
			p := b.String()
			if len(p) > mergeQuadratic {
				p = p[:mergeQuadratic]
			}
			if q, h := e.merge(p), e.mergeHeap(p); q != h {
				t.Fatalf("%s: merge(%q) = %d, heap %d", model, p, q, h)
			}
		}
	}
}

// TestEstimateEquivalence: EstimateRequest (one pass, fast tokenizer)
// equals a reference built on encoding/json and tiktoken-go with the same
// rules, on many request bodies.
func TestEstimateEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	bodies := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}`,
		`{"MODEL":"gpt-4","Messages":[{"ROLE":"user","content":"Hi"}],"MAX_TOKENS":"12","N":2}`,
		`{"m\u006fdel":"gpt-4","messages":[{"role":"user","name":"bob","content":"\ud83d\ude00 \ud800 x \udc00\u0041"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}`,
		`{"prompt":[1,2,3],"max_tokens":5}`, `{"prompt":[[1,2],[3],null]}`, `{"prompt":[null]}`, `{"prompt":[]}`,
		`{"prompt":[1.5,2]}`, `{"prompt":[[1],2]}`, `{"input":["a",["b"]],"instructions":{"x":"y","type":"z"}}`,
		`{"prompt":[99999999999999999999]}`, `{"prompt":[-1,0,1e2]}`,
		`{"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`,
		`{"max_output_tokens":2.56e2,"max_tokens":-1,"max_completion_tokens":1e300,"n":0}`, `{"n":1e9,"max_tokens":3}`,
		`{"messages":[1,"x",null,true,{"content":null}]}`, `{"messages":[]}`, `{"messages":null}`, `null`, ` {} `,
		`{"messages":[{"content":"` + strings.Repeat(`\n`, 40) + `"}]}`, `{"messages":[{"name":"a","name":"b"}]}`,
	}
	for range 3000 {
		bodies = append(bodies, randomBody(r))
	}
	for _, body := range bodies {
		for _, model := range []string{"", "gpt-4"} {
			got, gerr := testTok.EstimateRequest([]byte(body), model)
			want, werr := refEstimate([]byte(body), model)
			if (gerr != nil) != (werr != nil) || got != want {
				t.Fatalf("EstimateRequest(%s, %q) = %+v, %v; reference %+v, %v", body, model, got, gerr, want, werr)
			}
		}
	}
	// Malformed bodies are errors, and never panic.
	for _, body := range []string{``, `[1,2`, `"x"`, `{`, `{"a"`, `{"a":}`, `{"a":1,}`, `{"a":"\x"}`, `{"a":"` + "\x01" + `"}`,
		`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":tru}`, `{"messages":[{"content":"x"` + "}", `{"prompt":[1,2}`,
		`{"a":` + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + `}`, `nul`} {
		if _, err := testTok.EstimateRequest([]byte(body), ""); err == nil {
			t.Errorf("EstimateRequest(%.40q): no error", body)
		}
	}
}

func randomBody(r *rand.Rand) string {
	text := func() any {
		if r.IntN(4) == 0 {
			return []any{map[string]any{"type": "text", "text": randomText(r)},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,QUJD", "detail": "low"}}}
		}
		return randomText(r)
	}
	body := map[string]any{}
	if r.IntN(3) > 0 {
		body["model"] = []string{"gpt-4o", "gpt-4", "gpt-3.5-turbo", "llama", "o3-mini"}[r.IntN(5)]
	}
	switch r.IntN(4) {
	case 0, 1:
		var msgs []any
		for range r.IntN(5) {
			m := map[string]any{"role": []string{"system", "user", "assistant", "tool"}[r.IntN(4)], "content": text()}
			if r.IntN(4) == 0 {
				m["name"] = "n" + randomText(r)
			}
			if r.IntN(6) == 0 {
				m["tool_calls"] = []any{map[string]any{"id": "call_1", "type": "function",
					"function": map[string]any{"name": "f", "arguments": `{"q":"` + randomText(r) + `"}`}}}
			}
			msgs = append(msgs, m)
		}
		body["messages"] = msgs
	case 2:
		body["prompt"] = text()
		if r.IntN(3) == 0 {
			body["prompt"] = []int{1, 2, 3, r.IntN(100)}
		}
	case 3:
		body["input"] = []any{randomText(r), randomText(r)}
		body["instructions"] = randomText(r)
	}
	if r.IntN(2) == 0 {
		body["max_tokens"] = r.IntN(5000)
	}
	if r.IntN(5) == 0 {
		body["n"] = r.IntN(4)
	}
	if r.IntN(5) == 0 {
		body["tools"] = []any{map[string]any{"type": "function", "function": map[string]any{"name": "t", "description": randomText(r)}}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jnode is a JSON value with its object members in order.
type jnode struct {
	kind byte // '"', '0', '[', '{', 'n' (null), 't' (bool)
	str  string
	num  json.Number
	keys []string
	vals []*jnode
}

func decodeNode(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case string:
		return &jnode{kind: '"', str: v}, nil
	case json.Number:
		return &jnode{kind: '0', num: v}, nil
	case bool:
		return &jnode{kind: 't'}, nil
	case nil:
		return &jnode{kind: 'n'}, nil
	case json.Delim:
		n := &jnode{kind: byte(v)}
		for dec.More() {
			if v == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			c, err := decodeNode(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, c)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("token %v", tok)
}

// refEstimate applies EstimateRequest's rules to a body decoded by
// encoding/json, counting with tiktoken-go.
func refEstimate(body []byte, model string) (Estimate, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	root, err := decodeNode(dec)
	if err != nil || (root.kind != '{' && root.kind != 'n') {
		return Estimate{}, fmt.Errorf("bad body")
	}
	var e Estimate
	var text strings.Builder
	var collect func(n *jnode, depth int)
	collect = func(n *jnode, depth int) {
		if depth > maxCollectDepth {
			return
		}
		switch n.kind {
		case '"':
			text.WriteString(n.str)
			text.WriteByte('\n')
		case '[':
			for _, c := range n.vals {
				collect(c, depth+1)
			}
		case '{':
			for i, c := range n.vals {
				if !skipKey([]byte(n.keys[i])) {
					collect(c, depth+1)
				}
			}
		}
	}
	num := func(n *jnode) int64 {
		switch {
		case n.kind == '0':
			return wholeNumber(n.num)
		case n.kind == '"' && validNumber([]byte(n.str)):
			return wholeNumber(json.Number(n.str))
		}
		return 0
	}
	isInt := func(n *jnode) bool {
		if n.kind == 'n' {
			return true
		}
		_, ok := integer([]byte(n.num))
		return n.kind == '0' && ok
	}
	ints := func(n *jnode) (int64, bool) {
		if n.kind != '[' {
			return 0, false
		}
		for _, c := range n.vals {
			if !isInt(c) {
				return 0, false
			}
		}
		return int64(len(n.vals)), true
	}
	var maxTok [3]int64
	var nChoices int64
	for i, v := range root.vals {
		k := root.keys[i]
		for _, name := range []string{"model", "messages", "prompt", "input", "instructions", "tools", "functions",
			"max_tokens", "max_completion_tokens", "max_output_tokens", "n"} {
			if strings.EqualFold(k, name) { // as encoding/json matches fields
				k = name
				break
			}
		}
		switch k {
		case "model":
			if v.kind == '"' && v.str != "" {
				model = v.str
			}
		case "messages":
			if v.kind == 'n' {
				continue
			}
			if v.kind != '[' {
				collect(v, 0)
				continue
			}
			if len(v.vals) > 0 {
				e.Prompt += tokensReply
			}
			for _, m := range v.vals {
				if m.kind != '{' {
					collect(m, 0)
					continue
				}
				e.Prompt += tokensPerMessage
				named := false
				for j, mv := range m.vals {
					if m.keys[j] == "name" && !named {
						named = true
						e.Prompt += tokensPerName
					}
					collect(mv, 0)
				}
			}
		case "prompt", "input", "instructions", "tools", "functions":
			if n, ok := ints(v); ok && n > 0 {
				e.Prompt += n
				continue
			}
			if v.kind == '[' && len(v.vals) > 0 {
				total, ok := int64(0), true
				for _, c := range v.vals {
					if c.kind == 'n' {
						continue
					}
					n, ok2 := ints(c)
					total += n
					ok = ok && ok2
				}
				if ok {
					e.Prompt += total
					continue
				}
			}
			collect(v, 0)
		case "max_tokens":
			maxTok[0] = num(v)
		case "max_completion_tokens":
			maxTok[1] = num(v)
		case "max_output_tokens":
			maxTok[2] = num(v)
		case "n":
			nChoices = num(v)
		}
	}
	e.Prompt += testTok.countSlow(model, text.String())
	e.Completion = satMul(max(maxTok[0], maxTok[1], maxTok[2]), min(max(1, nChoices), maxN))
	return e, nil
}

// FuzzTokenizerEquivalence: the fast count equals tiktoken-go's for any
// text, in both encodings.
func FuzzTokenizerEquivalence(f *testing.F) {
	for _, s := range fragments {
		f.Add(s)
	}
	for _, s := range oddBytes {
		f.Add(s)
	}
	f.Add("It's 12345 o'clock!\n\n  \tfunc(x) {}  ")
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			return // tiktoken-go merges long pieces in quadratic time
		}
		for _, model := range equivModels {
			if fast, slow := testTok.Count(model, text), testTok.countSlow(model, text); fast != slow {
				t.Fatalf("%s: Count(%q) = %d, tiktoken-go %d (valid UTF-8: %v)", model, text, fast, slow, utf8.ValidString(text))
			}
		}
	})
}
