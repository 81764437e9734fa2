package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// diffParse reports how Parse and the reference (the former Decoder.Token
// implementation, parse_ref_test.go) disagree on data: acceptance, error
// code, message and id, and the parsed message's fields. "" when they agree.
func diffParse(data []byte) string {
	m, pe := Parse(data)
	rm, rpe := parseRef(data)
	if (pe == nil) != (rpe == nil) {
		return fmt.Sprintf("Parse error %v, reference %v", pe, rpe)
	}
	if pe != nil {
		if pe.Code != rpe.Code || pe.Message != rpe.Message || !sameRaw(pe.ID, rpe.ID) {
			return fmt.Sprintf("Parse error %d %q id %q, reference %d %q id %q", pe.Code, pe.Message, pe.ID, rpe.Code, rpe.Message, rpe.ID)
		}
		return ""
	}
	switch {
	case !sameRaw(m.ID, rm.ID):
		return fmt.Sprintf("ID %q, reference %q", m.ID, rm.ID)
	case m.Method != rm.Method:
		return fmt.Sprintf("Method %q, reference %q", m.Method, rm.Method)
	case !sameRaw(m.Result, rm.Result):
		return fmt.Sprintf("Result %q, reference %q", m.Result, rm.Result)
	case !sameRaw(m.Error, rm.Error):
		return fmt.Sprintf("Error %q, reference %q", m.Error, rm.Error)
	case (m.Params == nil) != (rm.Params == nil) || len(m.Params) != len(rm.Params):
		return fmt.Sprintf("Params %q, reference %q", m.Params, rm.Params)
	}
	for k, v := range rm.Params {
		if got, ok := m.Params[k]; !ok || !sameRaw(got, v) {
			return fmt.Sprintf("Params[%q] %q, reference %q", k, got, v)
		}
	}
	// handle takes a result's members with objectMembers where it used
	// json.Unmarshal.
	if m.Result != nil {
		got, ok := objectMembers(m.Result)
		var want map[string]json.RawMessage
		wok := firstByte(m.Result) == '{' && json.Unmarshal(m.Result, &want) == nil
		if ok != wok || len(got) != len(want) {
			return fmt.Sprintf("result members %q %v, json.Unmarshal %q %v", got, ok, want, wok)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || !sameRaw(g, v) {
				return fmt.Sprintf("result member %q: %q, json.Unmarshal %q", k, g, v)
			}
		}
	}
	return ""
}

// sameRaw: equal bytes, and nil only when the other is nil.
func sameRaw(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// diffStructure compares the scanner with the reference checkStructure on
// any valid UTF-8 input (Parse validates UTF-8 before scanning).
func diffStructure(data []byte) string {
	s := structScanner{data: data}
	pe := s.run()
	rpe := checkStructureRef(data)
	if (pe == nil) != (rpe == nil) || pe != nil && (pe.Code != rpe.Code || pe.Message != rpe.Message) {
		return fmt.Sprintf("scanner %v, reference %v", pe, rpe)
	}
	return ""
}

func nest(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// manyKeys is an object of n distinct keys k0..k(n-1), then extra members.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString(extra + "}")
	return b.String()
}

// structureCases: inputs with the code Parse must give (0: accepted) and,
// for refusals, a fragment of the message.
var structureCases = []struct {
	name string
	in   string
	code int
	msg  string
}{
	// Not JSON-RPC at all.
	{"invalid utf-8 in a string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xff\"}", CodeParseError, "UTF-8"},
	{"invalid utf-8 in a key", "{\"\xc3\":1}", CodeParseError, "UTF-8"},
	{"invalid utf-8 after the object", "{}\xff", CodeParseError, "UTF-8"},
	{"overlong utf-8", "{\"a\":\"\xc0\xaf\"}", CodeParseError, "UTF-8"},
	{"utf-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", CodeParseError, "UTF-8"},
	{"empty", "", CodeInvalidRequest, "empty"},
	{"white space", " \t\r\n", CodeInvalidRequest, "empty"},
	{"batch", ` [{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest, "batches"},
	{"string", `"x"`, CodeInvalidRequest, "object"},
	{"number", `1`, CodeInvalidRequest, "object"},
	{"null", `null`, CodeInvalidRequest, "object"},
	{"form feed first", "\f{}", CodeInvalidRequest, "object"},
	// Syntax.
	{"truncated", `{"jsonrpc":`, CodeParseError, "not valid JSON"},
	{"open brace", `{`, CodeParseError, "not valid JSON"},
	{"unterminated string", `{"a`, CodeParseError, "not valid JSON"},
	{"unterminated escape", `{"a\`, CodeParseError, "not valid JSON"},
	{"missing colon", `{"a" 1}`, CodeParseError, "not valid JSON"},
	{"missing comma", `{"a":1 "b":2}`, CodeParseError, "not valid JSON"},
	{"trailing comma in object", `{"a":1,}`, CodeParseError, "not valid JSON"},
	{"trailing comma in array", `{"a":[1,]}`, CodeParseError, "not valid JSON"},
	{"leading comma in array", `{"a":[,1]}`, CodeParseError, "not valid JSON"},
	{"non-string key", `{1:2}`, CodeParseError, "not valid JSON"},
	{"single quotes", `{'a':1}`, CodeParseError, "not valid JSON"},
	{"bad literal", `{"a":tru}`, CodeParseError, "not valid JSON"},
	{"literal run-on", `{"a":truex}`, CodeParseError, "not valid JSON"},
	{"capital literal", `{"a":True}`, CodeParseError, "not valid JSON"},
	{"leading zero", `{"a":01}`, CodeParseError, "not valid JSON"},
	{"bare minus", `{"a":-}`, CodeParseError, "not valid JSON"},
	{"plus sign", `{"a":+1}`, CodeParseError, "not valid JSON"},
	{"no fraction digits", `{"a":1.}`, CodeParseError, "not valid JSON"},
	{"no integer digits", `{"a":.5}`, CodeParseError, "not valid JSON"},
	{"no exponent digits", `{"a":1e}`, CodeParseError, "not valid JSON"},
	{"exponent sign only", `{"a":1e+}`, CodeParseError, "not valid JSON"},
	{"hex number", `{"a":0x1}`, CodeParseError, "not valid JSON"},
	{"NaN", `{"a":NaN}`, CodeParseError, "not valid JSON"},
	{"bad escape", `{"a":"\x"}`, CodeParseError, "not valid JSON"},
	{"short unicode escape", `{"a":"\u12"}`, CodeParseError, "not valid JSON"},
	{"bad unicode escape", `{"a":"\u12G4"}`, CodeParseError, "not valid JSON"},
	{"control character", "{\"a\":\"x\ty\"}", CodeParseError, "not valid JSON"},
	{"NUL in a key", "{\"a\x00\":1}", CodeParseError, "not valid JSON"},
	{"mismatched close", `{"a":[1}}`, CodeParseError, "not valid JSON"},
	{"vertical tab", "{\"a\":\v1}", CodeParseError, "not valid JSON"},
	{"comment", `{"a":1 /* x */}`, CodeParseError, "not valid JSON"},
	// Trailing data.
	{"second object", `{"jsonrpc":"2.0","id":1,"method":"ping"} {}`, CodeParseError, "trailing"},
	{"trailing garbage", `{}x`, CodeParseError, "trailing"},
	{"trailing bracket", `{}]`, CodeParseError, "trailing"},
	{"trailing brace", `{}}`, CodeParseError, "trailing"},
	{"trailing NUL", "{}\x00", CodeParseError, "trailing"},
	{"trailing form feed", "{}\f", CodeParseError, "trailing"},
	// Duplicate and case-variant keys, at every level.
	{"duplicate at the top", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest, "duplicate"},
	{"duplicate in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, CodeInvalidRequest, "duplicate"},
	{"case variant in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"path":"/ok","PATH":"/etc"}}}`, CodeInvalidRequest, "duplicate"},
	{"case variant in an array's object", `{"a":[1,{"x":1,"b":2,"X":3}]}`, CodeInvalidRequest, "duplicate"},
	{"duplicate deep", `{"a":` + nest(`{"b":`, `}`, 40, `{"c":1,"c":2}`) + `}`, CodeInvalidRequest, "duplicate"},
	{"empty key twice", `{"":1,"":2}`, CodeInvalidRequest, "duplicate"},
	{"kelvin sign", "{\"k\":1,\"\u212a\":2}", CodeInvalidRequest, "duplicate"},
	{"kelvin sign and K", "{\"\u212aey\":1,\"KEY\":2}", CodeInvalidRequest, "duplicate"},
	{"long s", "{\"\u017f\":1,\"S\":2}", CodeInvalidRequest, "duplicate"},
	{"escaped duplicate", `{"a":1,"\u0061":2}`, CodeInvalidRequest, "duplicate"},
	{"escaped case variant", `{"method":1,"\u004dETHOD":2}`, CodeInvalidRequest, "duplicate"},
	{"escaped kelvin", `{"k":1,"\u212A":2}`, CodeInvalidRequest, "duplicate"},
	{"escaped slash", `{"a/b":1,"a\/b":2}`, CodeInvalidRequest, "duplicate"},
	{"lone surrogates both U+FFFD", `{"\ud800":1,"\udc00":2}`, CodeInvalidRequest, "duplicate"},
	{"lone surrogate and U+FFFD", "{\"\\ud800\":1,\"\uFFFD\":2}", CodeInvalidRequest, "duplicate"},
	{"surrogate pair and its rune", "{\"\\ud83d\\ude00\":1,\"\U0001F600\":2}", CodeInvalidRequest, "duplicate"},
	{"sigma orbit", "{\"\u03c3\":1,\"\u03c2\":2}", CodeInvalidRequest, "duplicate"},
	{"titlecase orbit", "{\"\u01c4\":1,\"\u01c5\":2}", CodeInvalidRequest, "duplicate"},
	{"non-ASCII case", "{\"stra\u00dfe\":1,\"STRA\u00dfE\":2}", CodeInvalidRequest, "duplicate"},
	{"cyrillic case", "{\"\u0436\":1,\"\u0416\":2}", CodeInvalidRequest, "duplicate"},
	{"many keys, duplicate at the end", manyKeys(20, `,"K3":0`), CodeInvalidRequest, "duplicate"},
	{"many keys, duplicate past the switch", manyKeys(40, `,"x":1,"X":2`), CodeInvalidRequest, "duplicate"},
	{"many keys, escaped duplicate", manyKeys(17, `,"\u006b5":0`), CodeInvalidRequest, "duplicate"},
	{"many keys, kelvin duplicate", manyKeys(30, ",\"\u212a29\":0"), CodeInvalidRequest, "duplicate"},
	{"duplicate before a syntax error", `{"a":1,"a":2,}`, CodeInvalidRequest, "duplicate"},
	{"duplicate before its colon", `{"a":1,"A"`, CodeInvalidRequest, "duplicate"},
	{"syntax error before a duplicate", `{"a":1,,"a":2}`, CodeParseError, "not valid JSON"},
	// Depth.
	{"arrays too deep", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + nest("[", "]", 100, "") + `}}`, CodeInvalidRequest, "deeply"},
	{"objects 65 deep", nest(`{"a":`, `}`, 64, `{}`), CodeInvalidRequest, "deeply"},
	{"arrays 65 deep", `{"a":` + nest("[", "]", 64, "") + `}`, CodeInvalidRequest, "deeply"},
	{"too deep, then garbage", `{"a":` + nest("[", "", 64, "") + `!`, CodeInvalidRequest, "deeply"},
	{"garbage, then too deep", `{"a":!` + nest("[", "]", 64, ""), CodeParseError, "not valid JSON"},
	{"duplicate, then too deep", `{"a":1,"a":` + nest("[", "]", 64, ""), CodeInvalidRequest, "duplicate"},
	// JSON-RPC members.
	{"unknown member", `{"jsonrpc":"2.0","id":1,"method":"ping","x":1}`, CodeInvalidRequest, "unknown member"},
	{"case-variant member name", `{"jsonrpc":"2.0","id":1,"Method":"ping"}`, CodeInvalidRequest, "unknown member"},
	{"no version", `{"id":1,"method":"ping"}`, CodeInvalidRequest, "jsonrpc"},
	{"version 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, "jsonrpc"},
	{"numeric version", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, CodeInvalidRequest, "jsonrpc"},
	{"null version", `{"jsonrpc":null,"id":1,"method":"ping"}`, CodeInvalidRequest, "jsonrpc"},
	{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"float id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"exponent id", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"integral float id", `{"jsonrpc":"2.0","id":1.0,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"bool id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, "id"},
	{"id above int64", `{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"id below int64", `{"jsonrpc":"2.0","id":-9223372036854775809,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"id of 20 digits", `{"jsonrpc":"2.0","id":18446744073709551617,"method":"ping"}`, CodeInvalidRequest, "id"},
	{"id of 33 bytes", `{"jsonrpc":"2.0","id":-00000000000000000000000000000001,"method":"ping"}`, CodeParseError, "not valid JSON"},
	{"string id of 257 bytes", `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 257) + `","method":"ping"}`, CodeInvalidRequest, "id"},
	{"escaped id of 257 bytes", `{"jsonrpc":"2.0","id":"` + strings.Repeat(`\u0078`, 257) + `","method":"ping"}`, CodeInvalidRequest, "id"},
	{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest, "method"},
	{"null method", `{"jsonrpc":"2.0","id":1,"method":null}`, CodeInvalidRequest, "method"},
	{"numeric method", `{"jsonrpc":"2.0","id":1,"method":1}`, CodeInvalidRequest, "method"},
	{"long method", `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("m", 129) + `"}`, CodeInvalidRequest, "method"},
	{"request with result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, CodeInvalidRequest, "result"},
	{"request with error", `{"jsonrpc":"2.0","id":1,"method":"ping","error":{}}`, CodeInvalidRequest, "error"},
	{"array params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, CodeInvalidParams, "params"},
	{"string params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}`, CodeInvalidParams, "params"},
	{"response with params", `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, CodeInvalidRequest, "params"},
	{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`, CodeInvalidRequest, "exactly one"},
	{"neither", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "exactly one"},
	{"response without id", `{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest, "id"},
	{"string error", `{"jsonrpc":"2.0","id":1,"error":"x"}`, CodeInvalidRequest, "error"},
	// Accepted.
	{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}`, 0, ""},
	{"white space everywhere", " \r\n\t{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"ping\" , \"params\" : { } } \n", 0, ""},
	{"escaped member names", `{"\u006asonrpc":"2\u002e0","\u0069d":"\u0061","m\u0065thod":"tools\/list"}`, 0, ""},
	{"params null", `{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`, 0, ""},
	{"params with escaped keys", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"x","\u00e9":1}}`, 0, ""},
	{"result null", `{"jsonrpc":"2.0","id":1,"result":null}`, 0, ""},
	{"result with escaped keys", `{"jsonrpc":"2.0","id":1,"result":{ "c\u006fntent" : [ ] , "\u00e9":{"a":1} }}`, 0, ""},
	{"result array", `{"jsonrpc":"2.0","id":1,"result":[{"a":1}]}`, 0, ""},
	{"max int64 id", `{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping"}`, 0, ""},
	{"min int64 id", `{"jsonrpc":"2.0","id":-9223372036854775808,"method":"ping"}`, 0, ""},
	{"minus zero id", `{"jsonrpc":"2.0","id":-0,"method":"ping"}`, 0, ""},
	{"string id of 256 bytes", `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 256) + `","method":"ping"}`, 0, ""},
	{"escaped id of 256 bytes", `{"jsonrpc":"2.0","id":"` + strings.Repeat(`\u0078`, 256) + `","method":"ping"}`, 0, ""},
	{"method of 128 bytes", `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("m", 128) + `"}`, 0, ""},
	{"64 deep", `{"jsonrpc":"2.0","id":1,"result":` + nest(`{"a":`, `}`, 62, `[]`) + `}`, 0, ""},
	{"numbers", `{"jsonrpc":"2.0","id":1,"result":{"a":[0,-0,1.5,-1.5e+10,2E-3,1e400,123456789012345678901234567890]}}`, 0, ""},
	{"escapes", `{"jsonrpc":"2.0","id":1,"result":{"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800"}}`, 0, ""},
	{"DEL and high bytes in strings", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\x7f\":\"caf\u00e9 \U0001F600\"}}", 0, ""},
	{"different keys that look alike", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"k\":1,\"kk\":2,\"\u03c3\":3,\"s\":4,\"ss\":5,\"\u00df\":6,\"i\":7,\"\u0131\":8,\"\u0130\":9}}", 0, ""},
	{"many keys", `{"jsonrpc":"2.0","id":1,"result":` + manyKeys(100, "") + `}`, 0, ""},
	{"many objects of few keys", `{"jsonrpc":"2.0","id":1,"result":{"a":[` + strings.Repeat(`{"a":1,"A1":2,"b":{"a":1}},`, 50) + `{}]}}`, 0, ""},
	{"same key in sibling objects", `{"jsonrpc":"2.0","id":1,"result":{"a":{"x":1},"b":{"x":1,"y":{"x":1}},"x":1}}`, 0, ""},
}

// TestStructure checks every rejection (and some acceptances) of Parse
// against the expected code and against the reference implementation.
func TestStructure(t *testing.T) {
	for _, tt := range structureCases {
		_, pe := Parse([]byte(tt.in))
		got := 0
		if pe != nil {
			got = pe.Code
		}
		if got != tt.code || pe != nil && !strings.Contains(pe.Message, tt.msg) {
			t.Errorf("%s: %v (code %d), want code %d and %q", tt.name, pe, got, tt.code, tt.msg)
		}
		if d := diffParse([]byte(tt.in)); d != "" {
			t.Errorf("%s: differs from the reference: %s", tt.name, d)
		}
		if utf8.ValidString(tt.in) {
			if d := diffStructure([]byte(tt.in)); d != "" {
				t.Errorf("%s: structure differs from the reference: %s", tt.name, d)
			}
		}
	}
}

// TestParseFields checks what Parse returns for an accepted message.
func TestParseFields(t *testing.T) {
	m, pe := Parse([]byte(`{"jsonrpc":"2.0","id":"a\u0062","method":"tools/call","params":{"name":"x","ar\u0067uments":{"a":1}}}`))
	if pe != nil {
		t.Fatal(pe)
	}
	if string(m.ID) != `"a\u0062"` || m.Method != "tools/call" || string(m.Params["name"]) != `"x"` ||
		string(m.Params["arguments"]) != `{"a":1}` || len(m.Params) != 2 {
		t.Errorf("parsed %+v", m)
	}
	// Nothing returned aliases the input.
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":"a","result":{"x":1}}`,
		`{"jsonrpc":"2.0","id":"a","error":{"code":1}}`,
	} {
		data := []byte(in)
		m, pe := Parse(data)
		if pe != nil {
			t.Fatal(pe)
		}
		for i := range data {
			data[i] = 'X'
		}
		if string(m.ID) != `"a"` || m.Params != nil && string(m.Params["name"]) != `"x"` ||
			m.Result != nil && string(m.Result) != `{"x":1}` || m.Error != nil && string(m.Error) != `{"code":1}` {
			t.Errorf("%s: the message changed with its input: %+v", in, m)
		}
	}
	if m, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}`)); m.Params == nil {
		t.Error("empty params: nil map")
	}
	if m, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`)); m.Params != nil {
		t.Error("null params: non-nil map")
	}
}

// TestParseAllocs: parsing a tools/call result allocates only the Message,
// its id and one copy of the message.
func TestParseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (sync.Pool drops objects)")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(benchResult) }); n > 3 {
		t.Errorf("Parse of a result: %v allocations, want ≤ 3", n)
	}
}

var structureSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":null}]}}}`,
	`{"jsonrpc":"2.0","id":"x","result":{"tools":[]}}`,
	`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"m"}}`,
	`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":0.5}}`,
	`{"\u006asonrpc":"2\u002e0","\u0069d":"\u0061","m\u0065thod":"tools\/list","params":{"K":1,"\u212a":2}}`,
	"{\"a\":1,\"A\":2,\"\u212a\":3,\"\u017f\":4,\"\u03c3\":5,\"\u03c2\":6,\"\\ud800\":7,\"\\udc00\":8}",
	`{"a":{"b":[[[{"c":"\"\\\/\b\f\n\r\t"}]]]},"n":[-0.5e-3,1E+2,0]}`,
	`[{"jsonrpc":"2.0"}]`, `{"a":1,"A":2}`, `{`, ``, `{}x`, `{"a":tru}`, `"x"`, `1 2`,
}

// FuzzParseDifferential: Parse agrees with the reference on every input.
func FuzzParseDifferential(f *testing.F) {
	for _, s := range structureSeeds {
		f.Add([]byte(s))
	}
	for _, tt := range structureCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := diffParse(data); d != "" {
			t.Fatalf("%q: %s", data, d)
		}
	})
}

// FuzzStructure: the scanner agrees with the reference checkStructure on
// every valid UTF-8 input, whatever its top-level value.
func FuzzStructure(f *testing.F) {
	for _, s := range structureSeeds {
		f.Add([]byte(s))
	}
	for _, tt := range structureCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		if d := diffStructure(data); d != "" {
			t.Fatalf("%q: %s", data, d)
		}
	})
}

// TestSWARSpecial: swarSpecial agrees with the byte classes, for every
// byte value at every position and for random words.
func TestSWARSpecial(t *testing.T) {
	plain := func(x uint64) bool {
		for i := range 8 {
			if strClass[byte(x>>(8*i))] != chPlain {
				return false
			}
		}
		return true
	}
	for pos := range 8 {
		for c := range 256 {
			for _, fill := range []uint64{0x6161616161616161, 0x2020202020202020, 0x7f7f7f7f7f7f7f7f, 0x2121212121212121} {
				x := fill&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
				if swarSpecial(x) == plain(x) {
					t.Fatalf("swarSpecial(%#x) = %v", x, swarSpecial(x))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1 << 20 {
		x := rng.Uint64()
		if rng.IntN(2) == 0 {
			x &= 0x7f7f7f7f7f7f7f7f
			x |= 0x2020202020202020 & rng.Uint64()
		}
		if swarSpecial(x) == plain(x) {
			t.Fatalf("swarSpecial(%#x) = %v", x, swarSpecial(x))
		}
	}
}
