// Package dlp finds personal data and secrets in text: e-mail addresses,
// phone numbers, US social security numbers, payment cards, IBANs, IP
// addresses, cloud and API keys, bearer and basic credentials, JWTs and PEM
// private keys.
//
// Its guarantee: one linear pass over the text, in which a byte-class
// prefilter hands only candidate words (words with digits, '@', ':', '=' or
// 16 bytes and more) to the detectors, and nothing is reported before its
// structure is checked: Luhn and issuer ranges for cards, mod-97 and the
// country's length for IBANs, octet ranges for IPv4, the JSON header of a
// JWT, the issued formats of keys, the SSA's rules for SSNs. It allocates
// only for what it finds and never panics on input. Scanner implements
// guard.Scanner, so the same detector serves request bodies and streams.
package dlp

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/warden-ai/warden/internal/guard"
)

// GuardName is the gateway.Finding.Guard of every finding.
const GuardName = "dlp"

// Scanner is the DLP detector. The zero value is not usable: call New.
type Scanner struct{}

// New returns the DLP scanner with every detector enabled.
func New() *Scanner { return &Scanner{} }

// Byte classes. A word is a maximal run of bytes without kDelim.
const (
	kDelim uint16 = 1 << iota // ends a word: space, quotes, brackets, ',', ';', non-ASCII, ...
	kDigit
	kUpper
	kLower
	kAt    // '@'
	kColon // ':'
	kEq    // '='
	kTilde // '~'
	kDash  // '-'
	kUnder // '_'
	kDot   // '.'
	kPlus  // '+'
	kSlash // '/'
	kPunct // ( ) # $ % & ? ! * ^ |
)

// Sets of bytes, as masks of classes.
const (
	mAlnum  = kDigit | kUpper | kLower
	mUD     = kDigit | kUpper         // IBANs, AWS key ids
	mB64URL = mAlnum | kDash | kUnder // base64url, most tokens
	mB64    = mAlnum | kPlus | kSlash // base64
	mB64Pad = mB64 | kEq              // base64 with padding
	mWord   = mAlnum | kUnder         // identifiers
	mSlack  = mAlnum | kDash          // Slack tokens
	mAzure  = mAlnum | kUnder | kTilde | kDot | kDash
	// mInner are the bytes after which a new number or key can start
	// inside a word ("ip=10.0.0.1", "token:ghp_…").
	mInner = kAt | kColon | kEq | kTilde | kSlash | kPunct | kDot | kPlus
)

var class = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= '0' && c <= '9':
			t[c] = kDigit
		case c >= 'A' && c <= 'Z':
			t[c] = kUpper
		case c >= 'a' && c <= 'z':
			t[c] = kLower
		case c == '@':
			t[c] = kAt
		case c == ':':
			t[c] = kColon
		case c == '=':
			t[c] = kEq
		case c == '~':
			t[c] = kTilde
		case c == '-':
			t[c] = kDash
		case c == '_':
			t[c] = kUnder
		case c == '.':
			t[c] = kDot
		case c == '+':
			t[c] = kPlus
		case c == '/':
			t[c] = kSlash
		case c == '(' || c == ')' || c == '#' || c == '$' || c == '%' || c == '&' || c == '?' ||
			c == '!' || c == '*' || c == '^' || c == '|':
			t[c] = kPunct
		default:
			t[c] = kDelim // controls, space, non-ASCII, quotes, brackets, ',', ';', '<', '>', '\\', '`'
		}
	}
	return t
}()

// is reports whether c is in the set m.
func is(c byte, m uint16) bool { return class[c]&m != 0 }

// minToken is the shortest word handed to the key detectors without a
// digit, '@', ':', '=' or '~' in it: no key, token or JWT is shorter.
const minToken = 16

// scan is the state of one Scan call. It lives on the stack: matches are
// collected in buf (spilling to the heap only when there are many) and
// copied out once at the end.
type scan struct {
	text []byte
	n    int     // matches in buf
	buf  [16]hit // the first matches
	more []hit   // all matches once buf is full
}

// hit is a match before overlaps are resolved. It holds no pointers, so
// collecting hits costs the garbage collector nothing.
type hit struct {
	s, e  int
	k     kind
	score float32
}

// kind is a finding type; kinds lists its name, class and priority.
type kind uint8

const (
	kEmail kind = iota
	kPhone
	kSSN
	kCard
	kIBAN
	kIPv4
	kIPv6
	kAWSAccessKey
	kAWSSecretKey
	kGCPAPIKey
	kGCPClientSecret
	kAzureKey
	kAzureClientSecret
	kGitHubToken
	kGitLabToken
	kSlackToken
	kStripeKey
	kOpenAIKey
	kAnthropicKey
	kAPIKey
	kPassword
	kBearerToken
	kBasicAuth
	kJWT
	kPrivateKey
)

// kinds describes each kind. When findings overlap the one of higher
// priority is kept: a private key block over what its base64 happens to
// contain, a known key format over a generic assignment, a checksummed
// number over a phone number.
var kinds = [...]struct {
	typ, class string
	priority   int
}{
	kEmail:             {guard.TypeEmail, guard.ClassPII, 40},
	kPhone:             {guard.TypePhone, guard.ClassPII, 30},
	kSSN:               {guard.TypeSSN, guard.ClassPII, 35},
	kCard:              {guard.TypePaymentCard, guard.ClassPII, 50},
	kIBAN:              {guard.TypeIBAN, guard.ClassPII, 50},
	kIPv4:              {guard.TypeIPv4, guard.ClassPII, 20},
	kIPv6:              {guard.TypeIPv6, guard.ClassPII, 20},
	kAWSAccessKey:      {guard.TypeAWSAccessKey, guard.ClassSecret, 80},
	kAWSSecretKey:      {guard.TypeAWSSecretKey, guard.ClassSecret, 70},
	kGCPAPIKey:         {guard.TypeGCPAPIKey, guard.ClassSecret, 80},
	kGCPClientSecret:   {guard.TypeGCPClientSecret, guard.ClassSecret, 80},
	kAzureKey:          {guard.TypeAzureKey, guard.ClassSecret, 70},
	kAzureClientSecret: {guard.TypeAzureClientSecret, guard.ClassSecret, 80},
	kGitHubToken:       {guard.TypeGitHubToken, guard.ClassSecret, 80},
	kGitLabToken:       {guard.TypeGitLabToken, guard.ClassSecret, 80},
	kSlackToken:        {guard.TypeSlackToken, guard.ClassSecret, 80},
	kStripeKey:         {guard.TypeStripeKey, guard.ClassSecret, 80},
	kOpenAIKey:         {guard.TypeOpenAIKey, guard.ClassSecret, 80},
	kAnthropicKey:      {guard.TypeAnthropicKey, guard.ClassSecret, 80},
	kAPIKey:            {guard.TypeAPIKey, guard.ClassSecret, 60},
	kPassword:          {guard.TypePassword, guard.ClassSecret, 60},
	kBearerToken:       {guard.TypeBearerToken, guard.ClassSecret, 60},
	kBasicAuth:         {guard.TypeBasicAuth, guard.ClassSecret, 70},
	kJWT:               {guard.TypeJWT, guard.ClassSecret, 90},
	kPrivateKey:        {guard.TypePrivateKey, guard.ClassSecret, 100},
}

func (sc *scan) add(s, e int, k kind, score float32) {
	h := hit{s: s, e: e, k: k, score: score}
	if sc.more == nil && sc.n < len(sc.buf) {
		sc.buf[sc.n] = h
		sc.n++
		return
	}
	if sc.more == nil {
		sc.more = append(make([]hit, 0, 4*len(sc.buf)), sc.buf[:sc.n]...)
	}
	sc.more = append(sc.more, h)
}

// Scan implements guard.Scanner.
func (s *Scanner) Scan(text []byte) []guard.Finding {
	var sc scan
	sc.text = text
	sc.pems()
	n := len(text)
	check := 0 // the next position where the block test is worth trying
	for i := 0; i < n; {
		if i >= check && i+8 <= n {
			if boring(binary.LittleEndian.Uint64(text[i:])) {
				i = skipBoring(text, i)
			} else {
				check = i + 8
			}
		}
		for i < n && class[text[i]]&kDelim != 0 {
			i++
		}
		ws := i
		var acc uint16
		for i < n {
			k := class[text[i]]
			if k&kDelim != 0 {
				break
			}
			acc |= k
			i++
		}
		if i-ws < minToken && acc&(kDigit|kAt) == 0 && (acc&(kEq|kColon|kTilde) == 0 || i-ws < 10) {
			continue // a plain word: nothing can match in it
		}
		if end := sc.word(ws, i, acc); end > i {
			i = end
		}
	}
	return sc.resolve()
}

// skipBoring skips the 8-byte blocks from i that hold no byte any match
// needs (the first is known to be one), then backs up to the start of the
// word the first other block begins in, never before i.
func skipBoring(text []byte, i int) int {
	n := len(text)
	j := i + 8
	for j+8 <= n && boring(binary.LittleEndian.Uint64(text[j:])) {
		j += 8
	}
	for j > i && class[text[j-1]]&kDelim == 0 {
		j--
	}
	return j
}

// boring reports whether none of 8 bytes can be part of a match: no digit,
// capital, ':', '=', '@', '_' or '-' (every detector needs one of them in
// the word it matches, or the word is a plain lower-case word). It is the
// prefilter that lets prose pass at several bytes per cycle.
func boring(x uint64) bool {
	const (
		ones = 0x0101010101010101
		hi   = 0x8080808080808080
		lo7  = 0x7F7F7F7F7F7F7F7F
	)
	x7 := x & lo7
	// Bytes in 0x30..0x5A: digits, ':', ';', '<', '=', '>', '?', '@', capitals.
	r := (x7 + (0x80-0x30)*ones) &^ (x7 + (0x80-0x5B)*ones)
	// Bytes equal to '_' or '-' (exact zero-byte test of x7 ^ c).
	u, d := x7^('_'*ones), x7^('-'*ones)
	r |= ^((u + lo7) | u) | ^((d + lo7) | d)
	return r&^x&hi == 0 // bytes from 0x80 are delimiters: never interesting
}

// word runs the detectors that the classes of text[ws:we] call for. It
// returns the end of the last match, which may lie beyond we for numbers
// written in groups.
//
// A word is split into segments at the bytes after which a new value can
// start (mInner: "key=value", "tel:+1…", "user@host", "10.0.0.1:8080");
// each segment start is tried once as a key, as an assigned value and as a
// number.
func (sc *scan) word(ws, we int, acc uint16) int {
	t := sc.text
	end := we
	if acc&kAt != 0 {
		sc.emails(ws, we)
	}
	if acc&kTilde != 0 && we-ws >= 37 {
		sc.azureClientSecret(ws, we)
	}
	keys := we-ws >= 15
	values := acc&(kEq|kColon) != 0 && we-ws >= 10
	numbers := acc&(kDigit|kPlus|kPunct|kUpper) != 0 && acc&kDigit != 0
	for s := ws; s < we; {
		c := t[s]
		var prev byte
		if s > ws {
			prev = t[s-1]
		}
		e := 0
		if keys && isAlpha(c) && we-s >= 15 && !is(prev, mB64URL) {
			e = sc.known(s)
		}
		if e == 0 && values && (prev == '=' || prev == ':') && we-s >= 8 {
			e = sc.assignedInWord(ws, s, we)
		}
		if e == 0 && numbers && (s == ws || anchorAfter(prev) && (prev != '(' || s-1 == ws || !isAlnum(t[s-2]))) {
			e = sc.number(s)
		}
		if e > s {
			end = max(end, e)
			s = e
			continue
		}
		if acc&mInner == 0 {
			break // one segment: the whole word
		}
		if is(c, mInner) {
			s++
			continue
		}
		for s < we && class[t[s]]&mInner == 0 {
			s++
		}
		s++ // past the separator
	}
	if (acc&kDigit != 0 || we-ws >= minToken) && we-ws >= 8 {
		sc.assignedWord(ws, we)
	}
	if acc&(kDigit|kColon) == kDigit|kColon && we-ws >= 6 {
		sc.ipv6(ws, we)
	}
	return end
}

// anchorAfter reports whether a number may start after b: not after a
// letter, a digit or a byte that continues numbers (".", "-", "+", ")", "_").
func anchorAfter(b byte) bool {
	return class[b]&(mAlnum|kDot|kDash|kPlus|kUnder) == 0 && b != ')'
}

// resolve sorts the matches, drops those overlapping a match of higher
// priority (then: longer, then: earlier) and returns the findings.
func (sc *scan) resolve() []guard.Finding {
	hs := sc.buf[:sc.n]
	if sc.more != nil {
		hs = sc.more
	}
	if len(hs) == 0 {
		return nil
	}
	slices.SortFunc(hs, func(a, b hit) int {
		if c := cmp.Compare(a.s, b.s); c != 0 {
			return c
		}
		return cmp.Compare(b.e, a.e)
	})
	out := hs[:0]
	for _, h := range hs {
		keep := true
		for len(out) > 0 && out[len(out)-1].e > h.s {
			if better(h, out[len(out)-1]) {
				out = out[:len(out)-1]
				continue
			}
			keep = false
			break
		}
		if keep {
			out = append(out, h)
		}
	}
	fs := make([]guard.Finding, len(out))
	for i, h := range out {
		d := &kinds[h.k]
		fs[i] = guard.Finding{Guard: GuardName, Type: d.typ, Class: d.class, Start: h.s, End: h.e, Score: float64(h.score)}
	}
	return fs
}

func better(a, b hit) bool {
	if pa, pb := kinds[a.k].priority, kinds[b.k].priority; pa != pb {
		return pa > pb
	}
	return a.e-a.s > b.e-b.s
}

// maxHoldToken is the longest trailing word Hold keeps back: no finding
// that lies in one word is longer.
const maxHoldToken = maxJWT + 64

// maxChain bounds the numbers written in groups (phones, cards, IBANs)
// that Hold keeps back.
const maxChain = 64

// Hold implements guard.Scanner. It keeps back the trailing word (it may
// still grow into a key or an address), the groups of a number written with
// spaces that may still continue ("4111 1111 "), and a private key block
// that has not ended.
func (s *Scanner) Hold(text []byte) int {
	n := len(text)
	h := n
	for h > 0 && class[text[h-1]]&kDelim == 0 && n-h < maxHoldToken {
		h--
	}
	if h == n || chainGroup(text[h:n]) {
		h = chainStart(text, h, n)
	}
	if b, open := pemOpen(text); open && b < h {
		h = b
	}
	return n - h
}

// chainStart walks back from q over groups separated by single spaces that
// could belong to one number written in groups.
func chainStart(text []byte, q, n int) int {
	for q >= 2 && n-q < maxChain && text[q-1] == ' ' && class[text[q-2]]&kDelim == 0 {
		gs := q - 1
		for gs > 0 && class[text[gs-1]]&kDelim == 0 && q-1-gs <= 12 {
			gs--
		}
		if !chainGroup(text[gs : q-1]) {
			break
		}
		q = gs
	}
	return q
}

// chainGroup reports whether g could be one group of a phone number, card
// number or IBAN: ending in at most 12 bytes of digits, capitals and number
// punctuation with a digit or all capitals (an IBAN's bank code), after
// nothing or after a byte a number may follow ("!4111", "tel:+44").
func chainGroup(g []byte) bool {
	i := len(g)
	digit, caps := false, true
scan:
	for i > 0 && len(g)-i < 12 {
		switch c := g[i-1]; {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'Z':
		case c == '(' || c == ')' || c == '+' || c == '-' || c == '.' || c == '/':
		case c == 'x':
			caps = false
		default:
			break scan
		}
		i--
	}
	if i == len(g) || (i > 0 && isAlnum(g[i-1])) {
		return false
	}
	return digit || (caps && len(g)-i <= 4)
}

var _ guard.Scanner = (*Scanner)(nil)
