package dlp

import "net/netip"

// number tries the number detectors at an anchor p: a digit, '+' or '('
// (or an IBAN's country code). It returns the end of the match, which may
// lie beyond the word when the number is written in groups, or 0.
func (sc *scan) number(p int) int {
	switch c := sc.text[p]; {
	case isUpper(c):
		return sc.iban(p)
	case isDigit(c):
		// Dispatch on the first run of digits and what follows it, so
		// that a date, a time or an amount costs a few comparisons.
		d := sc.digits(p)
		next := sc.at(p + d)
		sep := next == ' ' || next == '-' || next == '.' || next == '/'
		e := 0
		if d >= 13 || (d == 4 && (next == ' ' || next == '-') && sc.digits(p+5) >= 3) {
			e = sc.card(p)
		}
		if e == 0 && (d == 3 && (next == '-' || next == ' ') || d == 9) {
			e = sc.ssn(p)
		}
		if e == 0 && d <= 3 && next == '.' {
			if d2 := sc.digits(p + d + 1); d2 > 0 && d2 <= 3 && sc.at(p+d+1+d2) == '.' {
				e = sc.ipv4(p)
			}
		}
		if e == 0 && (sep && (d == 3 || (d == 1 && c == '1') || (d >= 2 && c == '0')) || d == 10 || d == 11) {
			e = sc.phone(p)
		}
		return e
	case c == '+' || c == '(':
		return sc.phone(p)
	}
	return 0
}

// digits returns the length of the run of digits at i.
func (sc *scan) digits(i int) int { return sc.span(i, kDigit) }

// group is a run of digits [s, e) of a number written in groups.
type group struct{ s, e int }

// groups reads up to len(buf) runs of digits from i separated by one
// separator byte from seps, the same one throughout. It returns the groups
// and whether more groups followed.
func (sc *scan) groups(i int, seps string, buf []group) (gs []group, more bool) {
	var sep byte
	gs = buf[:0]
	for {
		d := sc.digits(i)
		if d == 0 {
			return gs, false
		}
		if len(gs) == cap(buf) {
			return gs, true
		}
		gs = append(gs, group{i, i + d})
		i += d
		c := sc.at(i)
		if c == 0 || !isDigit(sc.at(i+1)) || !inSet(c, seps) || (sep != 0 && c != sep) {
			return gs, false
		}
		sep = c
		i++
	}
}

func inSet(c byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

// continuesLeft reports whether the number at p continues one to its left
// ("… 0044 0532", the tail of a longer number or of an IBAN in groups).
func (sc *scan) continuesLeft(p int) bool {
	t := sc.text
	if p >= 2 && (t[p-1] == ' ' || t[p-1] == '-' || t[p-1] == '/' || t[p-1] == '.') && isDigit(t[p-2]) {
		return true
	}
	return sc.continuesIBAN(p)
}

// continuesIBAN reports whether the number at p follows groups of an IBAN
// written in groups.
func (sc *scan) continuesIBAN(p int) bool {
	t := sc.text
	// Walk back over groups of capitals and digits separated by single
	// spaces, looking for an IBAN's first group ("NL91 ABNA 0417 …").
	q := p
	for range 8 {
		if q < 2 || t[q-1] != ' ' {
			return false
		}
		gs := q - 1
		for gs > 0 && (isUpper(t[gs-1]) || isDigit(t[gs-1])) && q-1-gs < 4 {
			gs--
		}
		if gs == q-1 || (gs > 0 && isAlnum(t[gs-1])) {
			return false
		}
		if q-1-gs == 4 && isUpper(t[gs]) && isUpper(t[gs+1]) && isDigit(t[gs+2]) && isDigit(t[gs+3]) {
			return true
		}
		q = gs
	}
	return false
}

// idPrefix reports whether the number at p is written as an identifier or
// an amount ("#123-456-7890", "$415.555.0132"), not as a phone number or
// an SSN.
func (sc *scan) idPrefix(p int) bool {
	c := sc.at(p - 1)
	return p > 0 && (c == '#' || c == '$')
}

// endsNumber reports whether a number may end at e: no letter, digit or
// '_' follows, and no separator followed by another digit.
func (sc *scan) endsNumber(e int) bool {
	c := sc.at(e)
	if isAlnum(c) || c == '_' {
		return false
	}
	if (c == '-' || c == '.' || c == '/') && isDigit(sc.at(e+1)) {
		return false
	}
	return true
}

// ---------------------------------------------------------------- cards

// card finds a payment card number at p: 13 to 19 digits, together or in
// groups split by one kind of separator (space or dash; the first group of
// four), that pass the Luhn check and belong to an issuer's range with a
// length that issuer uses.
func (sc *scan) card(p int) int {
	var buf [8]group
	gs, more := sc.groups(p, " -", buf[:])
	if len(gs) == 0 {
		return 0
	}
	var num [19]byte
	if len(gs) == 1 {
		g := gs[0]
		if n := g.e - g.s; n < 13 || n > 19 || !sc.endsNumber(g.e) {
			return 0
		}
		copy(num[:], sc.text[g.s:g.e])
		if validCard(num[:g.e-g.s]) {
			sc.add(p, g.e, kCard, 0.99)
			return g.e
		}
		return 0
	}
	if gs[0].e-gs[0].s != 4 {
		return 0
	}
	// The longest run of groups from the first that is a valid card, and
	// all of the groups: digits in groups that go on are something else
	// (an IBAN's tail, a longer reference).
	best, n, last := 0, 0, 0
	for k, g := range gs {
		l := g.e - g.s
		if k > 0 && (l < 3 || l > 6) || n+l > 19 {
			break
		}
		copy(num[n:], sc.text[g.s:g.e])
		n += l
		if k > 0 && n >= 13 && validCard(num[:n]) && !isAlpha(sc.at(g.e)) {
			best, last = g.e, k
		}
	}
	if best == 0 || last != len(gs)-1 || more || sc.continuesIBAN(p) {
		return 0
	}
	sc.add(p, best, kCard, 0.99)
	return best
}

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum, alt := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if alt {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		alt = !alt
	}
	return sum%10 == 0
}

// validCard checks the Luhn digit and the issuer ranges (IIN) with the
// lengths each issuer uses.
func validCard(d []byte) bool {
	if !luhn(d) {
		return false
	}
	n := len(d)
	pre := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	p1, p2, p3, p4, p6 := pre(1), pre(2), pre(3), pre(4), pre(6)
	switch {
	case p1 == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n >= 16
	case p3 >= 300 && p3 <= 305, p4 == 3095, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p2 == 62: // UnionPay
		return n >= 16
	case p4 >= 2200 && p4 <= 2204: // Mir
		return n >= 16
	case p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893 || p4 == 6304 || p4 == 6759 ||
		(p4 >= 6761 && p4 <= 6763): // Maestro
		return n >= 13
	}
	return false
}

// ----------------------------------------------------------------- SSNs

// ssn finds a US social security number at p: AAA-GG-SSSS with the dashes,
// or with spaces or none when "SSN" or "social security" comes shortly
// before. Numbers the SSA never issues are not reported: area 000, 666 and
// 900-999, group 00, serial 0000, and the two numbers famous from
// advertising (078-05-1120, 219-09-9999).
func (sc *scan) ssn(p int) int {
	t := sc.text
	var d [9]byte
	end := 0
	switch {
	case sc.digits(p) == 3 && sc.at(p+3) == '-' && sc.digits(p+4) == 2 && sc.at(p+6) == '-' && sc.digits(p+7) == 4:
		end = p + 11
	case sc.digits(p) == 3 && sc.at(p+3) == ' ' && sc.digits(p+4) == 2 && sc.at(p+6) == ' ' && sc.digits(p+7) == 4:
		end = p + 11
		if !sc.keywordNear(p, ssnWords) {
			return 0
		}
	case sc.digits(p) == 9:
		end = p + 9
		if !sc.keywordNear(p, ssnWords) {
			return 0
		}
	default:
		return 0
	}
	if !sc.endsNumber(end) || sc.continuesLeft(p) || sc.idPrefix(p) {
		return 0
	}
	k := 0
	for _, c := range t[p:end] {
		if isDigit(c) {
			d[k] = c
			k++
		}
	}
	area, grp, serial := string(d[:3]), string(d[3:5]), string(d[5:])
	if area == "000" || area == "666" || d[0] == '9' || grp == "00" || serial == "0000" {
		return 0
	}
	if s := string(d[:]); s == "078051120" || s == "219099999" {
		return 0
	}
	sc.add(p, end, kSSN, 0.85)
	return end
}

var ssnWords = []string{"ssn", "social security", "ss#", "ss #", "ssa"}

// keywordNear reports whether one of words (lower case) occurs in the 40
// bytes before p, case-insensitively.
func (sc *scan) keywordNear(p int, words []string) bool {
	lo := max(0, p-40)
	var buf [40]byte
	w := buf[:0]
	for _, c := range sc.text[lo:p] {
		if isUpper(c) {
			c |= 0x20
		}
		w = append(w, c)
	}
	for _, k := range words {
		if indexOf(w, k) >= 0 {
			return true
		}
	}
	return false
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// ----------------------------------------------------------------- IPv4

// ipv4 finds a dotted quad at p: four decimal octets 0-255 without leading
// zeros, not followed by a fifth part, not written as a version ("v1.2.3.4",
// "version 10.0.0.1", "build 6.1.7601.2").
func (sc *scan) ipv4(p int) int {
	i := p
	for part := range 4 {
		d := sc.digits(i)
		if d == 0 || d > 3 || (d > 1 && sc.text[i] == '0') {
			return 0
		}
		v := 0
		for _, c := range sc.text[i : i+d] {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return 0
		}
		i += d
		if part < 3 {
			if sc.at(i) != '.' {
				return 0
			}
			i++
		}
	}
	if c := sc.at(i); isAlnum(c) || c == '_' || (c == '.' && isDigit(sc.at(i+1))) {
		return 0
	}
	if sc.versionBefore(p) {
		return 0
	}
	sc.add(p, i, kIPv4, 0.9)
	return i
}

// versionBefore reports whether the word before p names a version.
func (sc *scan) versionBefore(p int) bool {
	t := sc.text
	j := p
	for j > 0 && (t[j-1] == ' ' || t[j-1] == ':' || t[j-1] == '=') && p-j < 3 {
		j--
	}
	e := j
	for j > 0 && isAlpha(t[j-1]) && e-j < 12 {
		j--
	}
	var buf [12]byte
	w := buf[:0]
	for _, c := range t[j:e] {
		w = append(w, c|0x20)
	}
	switch string(w) {
	case "v", "ver", "version", "build", "release", "rev", "revision", "firmware", "fw", "kernel", "sdk", "api":
		return true
	}
	return false
}

// ----------------------------------------------------------------- IPv6

// ipv6 finds IPv6 addresses in text[ws:we]: runs of hex digits, ':' and
// '.' with at least two colons and one decimal digit that parse as an
// address and are not glued to a word.
func (sc *scan) ipv6(ws, we int) {
	t := sc.text
	colons := 0
	for _, c := range t[ws:we] {
		if c == ':' {
			colons++
		}
	}
	if colons < 2 {
		return
	}
	for i := ws; i < we; {
		if !ipv6Byte(t[i]) {
			i++
			continue
		}
		s := i
		colons, digit := 0, false
		for i < we && ipv6Byte(t[i]) {
			if t[i] == ':' {
				colons++
			} else if isDigit(t[i]) {
				digit = true
			}
			i++
		}
		e := i
		for e > s && (t[e-1] == '.' || (t[e-1] == ':' && (e-s < 2 || t[e-2] != ':'))) {
			e-- // a sentence's full stop, a trailing "key:" colon
		}
		if colons < 2 || !digit || e-s < 6 || e-s > 45 {
			continue
		}
		if s > 0 && (isAlnum(t[s-1]) || t[s-1] == '_') || isAlnum(sc.at(e)) || sc.at(e) == '_' {
			continue
		}
		a, err := netip.ParseAddr(string(t[s:e]))
		if err != nil || !a.Is6() {
			continue
		}
		sc.add(s, e, kIPv6, 0.85)
	}
}

func ipv6Byte(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') || c == ':' || c == '.'
}

// ----------------------------------------------------------------- IBAN

// ibanLength is the IBAN length of each country in the SWIFT IBAN registry.
var ibanLength = map[[2]byte]int{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28, {'B', 'A'}: 20,
	{'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'I'}: 27, {'B', 'R'}: 29, {'B', 'Y'}: 28,
	{'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28, {'C', 'Z'}: 24, {'D', 'E'}: 22, {'D', 'J'}: 27,
	{'D', 'K'}: 18, {'D', 'O'}: 28, {'E', 'E'}: 20, {'E', 'G'}: 29, {'E', 'S'}: 24, {'F', 'I'}: 18,
	{'F', 'K'}: 18, {'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22, {'G', 'E'}: 22, {'G', 'I'}: 23,
	{'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28, {'H', 'R'}: 21, {'H', 'U'}: 28, {'I', 'E'}: 22,
	{'I', 'L'}: 23, {'I', 'Q'}: 23, {'I', 'S'}: 26, {'I', 'T'}: 27, {'J', 'O'}: 30, {'K', 'W'}: 30,
	{'K', 'Z'}: 20, {'L', 'B'}: 28, {'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20, {'L', 'U'}: 20,
	{'L', 'V'}: 21, {'L', 'Y'}: 25, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22, {'M', 'K'}: 19,
	{'M', 'N'}: 20, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'I'}: 28, {'N', 'L'}: 18,
	{'N', 'O'}: 15, {'O', 'M'}: 23, {'P', 'K'}: 24, {'P', 'L'}: 28, {'P', 'S'}: 29, {'P', 'T'}: 25,
	{'Q', 'A'}: 29, {'R', 'O'}: 24, {'R', 'S'}: 22, {'R', 'U'}: 33, {'S', 'A'}: 24, {'S', 'C'}: 31,
	{'S', 'D'}: 18, {'S', 'E'}: 24, {'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27, {'S', 'O'}: 23,
	{'S', 'T'}: 25, {'S', 'V'}: 28, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26, {'U', 'A'}: 29,
	{'V', 'A'}: 22, {'V', 'G'}: 24, {'X', 'K'}: 20, {'Y', 'E'}: 30,
}

// iban finds an IBAN at p: a country code, two check digits and the
// country's length of letters and digits, together or in groups of four
// separated by single spaces, whose mod-97 checksum is 1 (ISO 13616).
func (sc *scan) iban(p int) int {
	t := sc.text
	if !isUpper(sc.at(p+1)) || !isDigit(sc.at(p+2)) || !isDigit(sc.at(p+3)) {
		return 0
	}
	want := ibanLength[[2]byte{t[p], t[p+1]}]
	if want == 0 {
		return 0
	}
	var buf [34]byte
	r := sc.span(p, mUD)
	end := 0
	switch {
	case r == want:
		copy(buf[:], t[p:p+r])
		end = p + r
	case r == 4 && sc.at(p+4) == ' ':
		copy(buf[:], t[p:p+4])
		k, i := 4, p+4
		for k < want {
			if sc.at(i) != ' ' {
				return 0
			}
			g := sc.span(i+1, mUD)
			if g == 0 || g > 4 || k+g > want || (g < 4 && k+g != want) {
				return 0
			}
			copy(buf[k:], t[i+1:i+1+g])
			k += g
			i += 1 + g
		}
		end = i
	default:
		return 0
	}
	if c := sc.at(end); isAlnum(c) || c == '_' {
		return 0
	}
	if !mod97(buf[:want]) {
		return 0
	}
	sc.add(p, end, kIBAN, 0.99)
	return end
}

// mod97 reports whether an IBAN's checksum is valid: the BBAN followed by
// the country code and check digits, letters as 10-35, is 1 mod 97.
func mod97(s []byte) bool {
	r := 0
	add := func(c byte) {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	for _, c := range s[4:] {
		add(c)
	}
	for _, c := range s[:4] {
		add(c)
	}
	return r == 1
}
