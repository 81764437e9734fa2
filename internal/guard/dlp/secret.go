package dlp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
)

// maxJWT bounds a JWT; longer runs are not reported as one.
const maxJWT = 8 << 10

// maxValue bounds a value assigned to a keyword.
const maxValue = 512

// maxPEM bounds a private key block (a 4096-bit RSA key is about 3.3 KB).
const maxPEM = 16 << 10

func isB64URL(c byte) bool   { return is(c, mB64URL) }
func isB64(c byte) bool      { return is(c, mB64) }
func isWordByte(c byte) bool { return is(c, mWord) }

// hasPrefixAt reports whether t[i:] starts with s.
func hasPrefixAt(t []byte, i int, s string) bool {
	return i >= 0 && len(t)-i >= len(s) && string(t[i:i+len(s)]) == s
}

// distinct counts the different bytes of b (up to 64 bytes looked at).
func distinct(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b[:min(len(b), 64)] {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// known matches the issued formats of keys and tokens at p and returns the
// end of the match, or 0.
func (sc *scan) known(p int) int {
	t := sc.text
	has := func(s string) bool { return hasPrefixAt(t, p, s) }
	// tail returns the end of a run of ok after a prefix of n bytes if it
	// is between lo and hi long, is not glued to a following word and is
	// not a placeholder ("xxxx…").
	tail := func(n int, m uint16, lo, hi int) int {
		r := sc.span(p+n, m)
		e := p + n + r
		if r < lo || r > hi || isWordByte(sc.at(e)) || distinct(t[p+n:e]) < 6 {
			return 0
		}
		return e
	}
	add := func(e int, typ kind) int {
		if e > 0 {
			sc.add(p, e, typ, 0.99)
		}
		return e
	}
	switch t[p] {
	case 'A':
		if has("AKIA") || has("ASIA") || has("ABIA") || has("ACCA") {
			return add(tail(4, mUD, 16, 16), kAWSAccessKey)
		}
		if has("AIza") {
			return add(tail(4, mB64URL, 35, 35), kGCPAPIKey)
		}
	case 'g':
		if has("ghp_") || has("gho_") || has("ghu_") || has("ghs_") || has("ghr_") {
			return add(tail(4, mAlnum, 36, 251), kGitHubToken)
		}
		if has("github_pat_") {
			return add(tail(11, mWord, 22, 244), kGitHubToken)
		}
		if has("glpat-") {
			return add(tail(6, mB64URL, 20, 64), kGitLabToken)
		}
	case 'x':
		if has("xoxb-") || has("xoxp-") || has("xoxa-") || has("xoxo-") || has("xoxr-") || has("xoxs-") || has("xoxe-") {
			return add(tail(5, mSlack, 10, 255), kSlackToken)
		}
		if has("xapp-") {
			return add(tail(5, mSlack, 20, 255), kSlackToken)
		}
	case 's':
		if has("sk-ant-") {
			return add(tail(7, mB64URL, 32, 255), kAnthropicKey)
		}
		if has("sk_live_") || has("sk_test_") {
			return add(tail(8, mAlnum, 16, 255), kStripeKey)
		}
		if has("sk-") {
			e := tail(3, mB64URL, 20, 255)
			if e == 0 {
				return 0
			}
			body := t[p+3 : e]
			switch {
			case bytes.Contains(body, []byte("T3BlbkFJ")), // base64 of "OpenAI", in every issued key
				hasPrefixAt(body, 0, "proj-") && len(body) >= 40,
				hasPrefixAt(body, 0, "svcacct-") && len(body) >= 40,
				hasPrefixAt(body, 0, "admin-") && len(body) >= 40,
				len(body) >= 32 && randomLooking(body):
				return add(e, kOpenAIKey)
			}
		}
	case 'r':
		if has("rk_live_") || has("rk_test_") {
			return add(tail(8, mAlnum, 16, 255), kStripeKey)
		}
	case 'w':
		if has("whsec_") {
			return add(tail(6, mB64, 24, 255), kStripeKey)
		}
	case 'G':
		if has("GOCSPX-") {
			return add(tail(7, mB64URL, 24, 64), kGCPClientSecret)
		}
	case 'e':
		if has("eyJ") {
			return sc.jwt(p)
		}
	}
	return 0
}

// randomLooking reports whether b mixes upper case, lower case and digits
// the way generated keys do.
func randomLooking(b []byte) bool {
	var up, low, dig bool
	for _, c := range b {
		switch {
		case isUpper(c):
			up = true
		case isLower(c):
			low = true
		case isDigit(c):
			dig = true
		}
	}
	return up && low && dig && distinct(b) >= 12
}

// jwt matches a JWT at p: base64url header "eyJ…" that decodes to a JSON
// object with "alg", a payload and a signature (empty only for alg none),
// or the five parts of a JWE whose header has "enc".
func (sc *scan) jwt(p int) int {
	t := sc.text
	h := sc.span(p, mB64URL)
	if h < 16 || h > 1360 || sc.at(p+h) != '.' {
		return 0
	}
	q := p + h + 1
	pl := sc.span(q, mB64URL)
	if pl < 2 || sc.at(q+pl) != '.' {
		return 0
	}
	r := q + pl + 1
	sg := sc.span(r, mB64URL)
	end := r + sg
	var buf [1024]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], t[p:p+h])
	if err != nil {
		return 0
	}
	hdr := buf[:n]
	if hdr[0] != '{' || !json.Valid(hdr) {
		return 0
	}
	enc := bytes.Contains(hdr, []byte(`"enc"`))
	if !enc && !bytes.Contains(hdr, []byte(`"alg"`)) {
		return 0
	}
	if sc.at(end) == '.' && isB64URL(sc.at(end+1)) {
		// JWE compact serialization: header.key.iv.ciphertext.tag
		if !enc {
			return 0
		}
		c := sc.span(end+1, mB64URL)
		if sc.at(end+1+c) != '.' {
			return 0
		}
		tag := sc.span(end+2+c, mB64URL)
		end = end + 2 + c + tag
	} else if sg == 0 && !bytes.Contains(hdr, []byte(`none`)) || sg > 0 && sg < 16 {
		return 0
	}
	if end-p > maxJWT || isWordByte(sc.at(end)) {
		return 0
	}
	sc.add(p, end, kJWT, 0.99)
	return end
}

// azureClientSecret matches Microsoft Entra client secrets in text[ws:we]:
// three characters, a digit, "Q~" and 31 to 34 more.
func (sc *scan) azureClientSecret(ws, we int) {
	t := sc.text
	ok := func(c byte) bool { return is(c, mAzure) }
	for q := ws + 4; q+1 < we; q++ {
		if t[q] != 'Q' || t[q+1] != '~' || !isDigit(t[q-1]) {
			continue
		}
		s := q - 4
		if !ok(t[s]) || !ok(t[s+1]) || !ok(t[s+2]) || (s > 0 && ok(t[s-1])) {
			continue
		}
		r := sc.span(q+2, mAzure)
		if r < 31 || r > 34 || distinct(t[q+2:q+2+r]) < 8 {
			continue
		}
		sc.add(s, q+2+r, kAzureClientSecret, 0.95)
		q += 1 + r
	}
}

// Keyword kinds for assigned values.
const (
	kwNone = iota
	kwGeneric
	kwAWSSecret
	kwAzure
	kwPassword
	kwBearer
	kwBasic
)

// assignedInWord checks the value at vs that follows '=' or ':' inside a
// word ("api_key=…", "password:…"), with the keyword right before the
// sign. It returns the end of a secret value, or 0.
func (sc *scan) assignedInWord(ws, vs, we int) int {
	t := sc.text
	q := vs - 1
	if q > ws && (t[q-1] == '=' || t[q-1] == ':') {
		q-- // ":=", "=="
	}
	ks := q
	for ks > ws && identByte(t[ks-1]) && q-ks < 64 {
		ks--
	}
	if kind := keywordKind(t[ks:q], true); kind != kwNone {
		return sc.value(kind, vs, we)
	}
	return 0
}

// assignedWord checks the word at [ws, we) as a value given to a keyword
// before it (`"token": "…"`, "secret = …", "Authorization: Bearer …").
func (sc *scan) assignedWord(ws, we int) {
	kw, sep, ok := sc.keywordBefore(ws)
	if !ok {
		return
	}
	if kind := keywordKind(kw, sep); kind != kwNone {
		sc.value(kind, ws, we)
	}
}

// equalFold compares ASCII letters case-insensitively with a lower case s.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

func identByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// keywordBefore returns the identifier that assigns the value starting at
// vs and whether an assignment sign (':' or '=') came between them. ok is
// false, cheaply, when nothing can: no sign, and no word of 5 or 6 letters
// ("Bearer", "Basic") right before.
func (sc *scan) keywordBefore(vs int) (kw []byte, sep, ok bool) {
	t := sc.text
	lo := max(0, vs-48)
	j := vs
	for j > lo && vs-j < 4 && (t[j-1] == ' ' || t[j-1] == '\t' || t[j-1] == '"' || t[j-1] == '\'') {
		j--
	}
	if j > lo && (t[j-1] == ':' || t[j-1] == '=') {
		sep = true
		j--
		if j > lo && (t[j-1] == ':' || t[j-1] == '=') {
			j--
		}
		for j > lo && vs-j < 8 && (t[j-1] == ' ' || t[j-1] == '\t' || t[j-1] == '"' || t[j-1] == '\'') {
			j--
		}
	} else if j == vs {
		return nil, false, false
	}
	e := j
	for j > lo && identByte(t[j-1]) && e-j < 64 {
		j--
	}
	if !sep && e-j != 5 && e-j != 6 {
		return nil, false, false
	}
	return t[j:e], sep, true
}

// keywordKind classifies an identifier that a value is assigned to.
func keywordKind(kw []byte, sep bool) int {
	// Every keyword ends in one of a few letter pairs: a cheap first test.
	var l1, l2 byte
	for i := len(kw) - 1; i >= 0; i-- {
		if c := kw[i]; isAlnum(c) {
			if l1 == 0 {
				l1 = c | 0x20
				continue
			}
			l2 = c | 0x20
			break
		}
	}
	if !sep {
		switch {
		case l2 == 'e' && l1 == 'r':
			if equalFold(kw, "bearer") {
				return kwBearer
			}
		case l2 == 'i' && l1 == 'c':
			if equalFold(kw, "basic") {
				return kwBasic
			}
		}
		return kwNone
	}
	switch string([]byte{l2, l1}) {
	case "ey", "en", "on", "et", "rd", "wd", "ls", "ss", "th", "se", "re", "al", "ig":
	default:
		return kwNone
	}
	var buf [40]byte
	n := 0
	// Lower case letters and digits of the last 40 such bytes.
	for i := len(kw) - 1; i >= 0 && n < len(buf); i-- {
		c := kw[i]
		if isUpper(c) {
			c |= 0x20
		}
		if isLower(c) || isDigit(c) {
			n++
			buf[len(buf)-n] = c
		}
	}
	w := string(buf[len(buf)-n:])
	suffix := func(s string) bool { return len(w) >= len(s) && w[len(w)-len(s):] == s }
	switch {
	case containsStr(w, "awssecret") || suffix("secretaccesskey"):
		return kwAWSSecret
	case suffix("accountkey") || suffix("sharedaccesskey"):
		return kwAzure
	case suffix("password") || suffix("passwd") || suffix("passphrase") || w == "pwd" || w == "pass" || suffix("dbpass"):
		return kwPassword
	case suffix("publickey") || suffix("primarykey") || suffix("foreignkey") || suffix("sortkey") ||
		suffix("partitionkey") || suffix("cachekey") || suffix("idempotencykey") || suffix("hashkey"):
		return kwNone
	case suffix("key") || suffix("token") || suffix("secret") || suffix("credential") || suffix("credentials") ||
		suffix("auth") || suffix("authorization") || w == "sig" || suffix("signature"):
		return kwGeneric
	}
	return kwNone
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// value checks the value at vs (up to we at most) for a keyword kind and
// returns the end of the secret it found, or 0.
func (sc *scan) value(kw, vs, we int) int {
	t := sc.text
	if vs >= we {
		return 0
	}
	tokenByte := func(c byte) bool {
		return isAlnum(c) || c == '+' || c == '/' || c == '=' || c == '_' || c == '.' || c == '~' || c == '-' || c == '%'
	}
	ve := vs
	for ve < we && ve-vs <= maxValue && tokenByte(t[ve]) {
		if t[ve] == '=' && ve+1 < we && t[ve+1] != '=' && tokenByte(t[ve+1]) {
			break // '=' inside: another assignment, not base64 padding
		}
		ve++
	}
	for ve > vs && t[ve-1] == '.' {
		ve--
	}
	v := t[vs:ve]
	switch kw {
	case kwAWSSecret:
		if r := sc.spanMax(vs, mB64, 41); r == 40 && !tokenByte(sc.at(vs+40)) || (r == 40 && sc.at(vs+40) == '.') {
			if highEntropy(t[vs : vs+40]) {
				sc.add(vs, vs+40, kAWSSecretKey, 0.95)
				return vs + 40
			}
		}
	case kwAzure:
		if r := sc.spanMax(vs, mB64Pad, 101); r >= 40 && r <= 100 && highEntropy(t[vs:vs+r]) {
			sc.add(vs, vs+r, kAzureKey, 0.9)
			return vs + r
		}
	case kwPassword:
		pe := vs
		for pe < we && pe-vs <= 128 && t[pe] > ' ' && t[pe] < 0x7f {
			pe++
		}
		for pe > vs && (t[pe-1] == '.' || t[pe-1] == ',' || t[pe-1] == ';') {
			pe--
		}
		if password(t[vs:pe]) {
			sc.add(vs, pe, kPassword, 0.7)
			return pe
		}
		return 0
	case kwBasic:
		r := sc.spanMax(vs, mB64Pad, 513)
		if r < 8 || r > 512 || tokenByte(sc.at(vs+r)) && sc.at(vs+r) != '.' {
			return 0
		}
		var buf [384]byte
		d := bytes.TrimRight(t[vs:vs+r], "=")
		n, err := base64.RawStdEncoding.Decode(buf[:], d)
		if err != nil || bytes.IndexByte(buf[:n], ':') <= 0 || !printable(buf[:n]) {
			return 0
		}
		sc.add(vs, vs+r, kBasicAuth, 0.95)
		return vs + r
	}
	if len(v) < minToken || len(v) > maxValue || !highEntropy(v) {
		return 0
	}
	typ, score := kAPIKey, float32(0.75)
	if kw == kwBearer {
		typ, score = kBearerToken, 0.9
	}
	sc.add(vs, ve, typ, score)
	return ve
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// password accepts 8 to 128 printable bytes that mix at least two of
// lower case, upper case, digits and symbols and are not a placeholder.
func password(v []byte) bool {
	if len(v) < 8 || len(v) > 128 || distinct(v) < 5 {
		return false
	}
	var low, up, dig, sym int
	for _, c := range v {
		switch {
		case isLower(c):
			low = 1
		case isUpper(c):
			up = 1
		case isDigit(c):
			dig = 1
		default:
			sym = 1
		}
	}
	if low+up+dig+sym < 2 {
		return false
	}
	l := bytes.ToLower(v)
	for _, p := range []string{"password", "changeme", "redacted", "example", "placeholder", "your_", "xxxx", "****", "null", "none", "undefined"} {
		if bytes.Contains(l, []byte(p)) {
			return false
		}
	}
	return v[0] != '$' && v[0] != '%' && v[0] != '<'
}

// highEntropy reports whether v looks generated: a digit, at least two of
// lower case, upper case and digits, and at least 3 bits of Shannon
// entropy per byte.
func highEntropy(v []byte) bool {
	var counts [256]uint16
	var low, up, dig bool
	for _, c := range v {
		counts[c]++
		switch {
		case isLower(c):
			low = true
		case isUpper(c):
			up = true
		case isDigit(c):
			dig = true
		}
	}
	if !dig || !(low || up) {
		return false
	}
	n := float64(len(v))
	h := 0.0
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= 3.0
}

// --------------------------------------------------------- private keys

var (
	beginMark  = []byte("-----BEGIN ")
	endMark    = []byte("-----END")
	privateKey = []byte("PRIVATE KEY")
)

// pems finds PEM private key blocks: the header line, the body and the
// footer as far as they are present.
func (sc *scan) pems() {
	t := sc.text
	for off := 0; off < len(t); {
		// "PRIVATE KEY" is rarer than "-----" in ordinary text: find it,
		// then the header's start.
		i := bytes.Index(t[off:], privateKey)
		if i < 0 {
			return
		}
		i += off
		b := bytes.LastIndex(t[max(off, i-64):i], beginMark)
		if b < 0 {
			off = i + len(privateKey)
			continue
		}
		b += max(off, i-64)
		end, _, ok := pemBlock(t, b)
		if ok {
			sc.add(b, end, kPrivateKey, 1)
			off = end
			continue
		}
		off = b + len(beginMark)
	}
}

// pemOpen returns the start of the last private key block in text that
// may still continue, if there is one.
func pemOpen(text []byte) (int, bool) {
	lo := max(0, len(text)-maxPEM)
	i := bytes.LastIndex(text[lo:], beginMark)
	if i < 0 {
		return 0, false
	}
	_, open, _ := pemBlock(text, lo+i)
	return lo + i, open
}

// pemBlock reads the block whose "-----BEGIN " is at b. ok says it is a
// private key block; end is where it ends (after the footer, or after the
// last body line when the footer is missing); open says the text ended
// before the block could be seen to end.
func pemBlock(t []byte, b int) (end int, open, ok bool) {
	i := b + len(beginMark)
	ls := i
	for i < len(t) && i-ls <= 48 && (isUpper(t[i]) || isDigit(t[i]) || t[i] == ' ') {
		i++
	}
	if i >= len(t) {
		return len(t), true, false // the header is not complete yet
	}
	if i-ls > 48 {
		return 0, false, false
	}
	if !hasPrefixAt(t, i, "-----") {
		if rest := t[i:]; len(rest) < 5 && bytes.HasPrefix([]byte("-----"), rest) {
			return len(t), true, false
		}
		return 0, false, false
	}
	label := t[ls:i]
	if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && string(label) != "PGP PRIVATE KEY BLOCK" {
		return 0, false, false
	}
	end = i + 5
	limit := min(len(t), b+maxPEM)
	for j := end; ; {
		k := skipPEMSpace(t, j, limit)
		if k >= len(t) {
			return end, true, true
		}
		if k >= limit {
			return end, false, true
		}
		if t[k] == '-' {
			fe, fopen := pemFooter(t, k)
			if fopen {
				return end, true, true
			}
			if fe > 0 {
				return fe, false, true
			}
			return end, false, true
		}
		if hasPrefixAt(t, k, "Proc-Type:") || hasPrefixAt(t, k, "DEK-Info:") || hasPrefixAt(t, k, "Comment:") {
			for k < limit && t[k] != '\n' && t[k] != '\r' && t[k] != '\\' {
				k++
			}
			end, j = k, k
			continue
		}
		r := 0
		for k+r < limit && (isB64(t[k+r]) || t[k+r] == '=') {
			r++
		}
		if r == 0 {
			return end, false, true
		}
		if k+r >= len(t) {
			return k + r, true, true
		}
		if r < 16 {
			// A short line can only be the last one, right before the footer.
			k2 := skipPEMSpace(t, k+r, limit)
			if rest := t[min(k2, len(t)):]; len(rest) < len(endMark) && bytes.HasPrefix(endMark, rest) {
				return k + r, true, true // the footer may still come
			}
			if !bytes.HasPrefix(t[k2:], endMark) {
				return end, false, true
			}
		}
		end, j = k+r, k+r
	}
}

// skipPEMSpace skips white space and the two-byte escapes "\n", "\r" of
// keys pasted into one line.
func skipPEMSpace(t []byte, j, limit int) int {
	for j < limit {
		switch t[j] {
		case ' ', '\t', '\r', '\n':
			j++
		case '\\':
			if j+1 < limit && (t[j+1] == 'n' || t[j+1] == 'r') {
				j += 2
				continue
			}
			return j
		default:
			return j
		}
	}
	return j
}

// pemFooter reads "-----END <label>-----" at k: its end, or open when the
// text ends inside it, or 0 when it is something else.
func pemFooter(t []byte, k int) (end int, open bool) {
	const mark = "-----END "
	rest := t[k:]
	if len(rest) < len(mark) {
		return 0, bytes.HasPrefix([]byte(mark), rest)
	}
	if string(rest[:len(mark)]) != mark {
		return 0, false
	}
	i := k + len(mark)
	for i < len(t) && i-k < 64 && (isUpper(t[i]) || isDigit(t[i]) || t[i] == ' ') {
		i++
	}
	if i >= len(t) {
		return 0, true
	}
	for n := 0; n < 5; n++ {
		if i+n >= len(t) {
			return 0, true
		}
		if t[i+n] != '-' {
			return 0, false
		}
	}
	return i + 5, false
}
