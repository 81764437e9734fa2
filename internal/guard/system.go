package guard

import "unicode/utf8"

// Insertion is text added to a body at one place: Len bytes at offset At
// of the original body. Offsets at or after At move by Len.
type Insertion struct {
	At, Len int
}

// Shift moves findings of the original body to the new one.
func (in Insertion) Shift(fs []Finding) {
	for i := range fs {
		if fs[i].Start >= in.At {
			fs[i].Start += in.Len
			fs[i].End += in.Len
		} else if fs[i].End > in.At { // straddles: covers the inserted text too
			fs[i].End += in.Len
		}
	}
}

// AddSystemText returns a JSON request body with text added to its system
// prompt, for the gateway actions that have one:
//
//   - chat.completions: appended to the first message's content (after a
//     blank line) when that message is a system or developer message with
//     string content, else a new {"role":"system"} message is put first;
//   - responses: appended to "instructions", or "instructions" is added.
//
// ok is false, and body is returned unchanged, for other actions and for
// bodies without that shape (no messages array, a top level that is not an
// object). Invalid JSON gives an *InputError. The result is valid JSON with
// the same members; only one place of body changes (Insertion).
func AddSystemText(action string, body []byte, text string) (out []byte, ins Insertion, ok bool, err error) {
	if !utf8.Valid(body) {
		return body, Insertion{}, false, errNotUTF8()
	}
	var (
		rootObj                 = -1 // offset of the top-level '{'
		msgsOpen                = -1 // offset of the messages '['
		msgsEmpty               bool
		firstRole               string
		firstContentS, firstEnd = -1, -1
		instrS, instrEnd        = -1, -1
		instrSeen               bool
	)
	err = walkJSON(body, func(p []pathElem, v jsonValue) error {
		switch len(p) {
		case 0:
			if v.kind == jObject {
				rootObj = v.s
			}
		case 1:
			switch string(p[0].key) {
			case "messages":
				if v.kind == jArray {
					msgsOpen = v.s
					msgsEmpty = isEmptyContainer(body[v.s:v.e])
				}
			case "instructions":
				instrSeen = true
				if v.kind == jString {
					instrS, instrEnd = v.s, v.e
				}
			}
		case 3:
			if string(p[0].key) == "messages" && p[1].key == nil && p[1].index == 0 && p[2].key != nil {
				switch string(p[2].key) {
				case "role":
					if v.kind == jString {
						firstRole = string(decodeIfEscaped(body[v.s:v.e], v.esc))
					}
				case "content":
					if v.kind == jString {
						firstContentS, firstEnd = v.s, v.e
					} else {
						firstContentS, firstEnd = -1, -1
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return body, Insertion{}, false, err
	}
	if rootObj < 0 {
		return body, Insertion{}, false, nil
	}
	esc := AppendJSONString(nil, []byte(text))
	esc = esc[1 : len(esc)-1] // without the quotes
	insert := func(at int, add []byte) ([]byte, Insertion, bool, error) {
		o := make([]byte, 0, len(body)+len(add))
		o = append(append(append(o, body[:at]...), add...), body[at:]...)
		return o, Insertion{At: at, Len: len(add)}, true, nil
	}
	switch action {
	case "chat.completions":
		if msgsOpen < 0 {
			return body, Insertion{}, false, nil
		}
		if (firstRole == "system" || firstRole == "developer") && firstEnd >= 0 {
			add := esc
			if firstEnd > firstContentS {
				add = append([]byte(`\n\n`), esc...)
			}
			return insert(firstEnd, add)
		}
		add := append(append([]byte(`{"role":"system","content":"`), esc...), `"}`...)
		if !msgsEmpty {
			add = append(add, ',')
		}
		return insert(msgsOpen+1, add)
	case "responses":
		if instrEnd >= 0 {
			add := esc
			if instrEnd > instrS {
				add = append([]byte(`\n\n`), esc...)
			}
			return insert(instrEnd, add)
		}
		if instrSeen { // "instructions": null or another kind: not ours to change
			return body, Insertion{}, false, nil
		}
		add := append(append([]byte(`"instructions":"`), esc...), '"')
		if !isEmptyContainer(body[rootObj:]) {
			add = append(add, ',')
		}
		return insert(rootObj+1, add)
	}
	return body, Insertion{}, false, nil
}

// isEmptyContainer reports whether b starts with "{}" or "[]" (white space
// allowed inside).
func isEmptyContainer(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	i := skipWS(b, 1)
	return i < len(b) && (b[0] == '{' && b[i] == '}' || b[0] == '[' && b[i] == ']')
}

func decodeIfEscaped(raw []byte, esc bool) []byte {
	if !esc {
		return raw
	}
	return decodeString(nil, raw)
}
