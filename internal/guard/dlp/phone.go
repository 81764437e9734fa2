package dlp

// phoneGroup is one group of digits of a phone number; paren marks "(415)".
type phoneGroup struct {
	s, e  int
	paren bool
	sep   byte // the separator before the group: ' ', '-', '.', '/', or 0
}

// phoneWords make a bare run of digits a phone number when one of them
// comes shortly before it.
var phoneWords = []string{"phone", "tel", "mobil", "cell", "call", "fax", "whatsapp", "sms", "dial", "contact"}

// phone finds a phone number at p (a digit, '+' or '('):
//   - international: "+" or "00", a country code and 8 to 15 digits in all
//     (E.164), in groups separated by single spaces, dashes, dots or
//     slashes, with "(0)" or "(20)" allowed ("+44 (0)20 7946 0958"); +1
//     numbers have exactly 10 digits after the 1;
//   - North American: (415) 555-0132, 415-555-0132, 415.555.0132,
//     415 555 0132 (valid area and exchange codes only), optionally with a
//     leading 1;
//   - national with a trunk 0 and 10 or 11 digits in groups
//     ("020 7946 0958", "01 23 45 67 89", "03-1234-5678");
//   - 10 or 11 digits together only after a word like "phone" or "call".
//
// An extension written right after the number ("x123") is part of it. A
// number that continues a longer one on either side is not a phone number.
func (sc *scan) phone(p int) int {
	t := sc.text
	i := p
	plus := t[p] == '+'
	if plus {
		i++
		if !isDigit(sc.at(i)) && sc.at(i) != '(' {
			return 0
		}
	}
	var buf [8]phoneGroup
	gs := buf[:0]
	var sep byte
	total := 0
	for {
		if len(gs) == cap(buf) {
			return 0
		}
		g := phoneGroup{sep: sep}
		if sc.at(i) == '(' {
			g.paren = true
			i++
		}
		d := sc.digits(i)
		if d == 0 || d > 15 {
			return 0
		}
		g.s, g.e = i, i+d
		i += d
		if g.paren {
			if sc.at(i) != ')' {
				return 0
			}
			i++
		}
		gs = append(gs, g)
		total += d
		if total > 15 {
			return 0
		}
		c := sc.at(i)
		switch {
		case c == ' ' || c == '-' || c == '.' || c == '/':
			n1 := sc.at(i + 1)
			if isDigit(n1) || (n1 == '(' && isDigit(sc.at(i+2))) {
				sep = c
				i++
				continue
			}
		case c == '(' && isDigit(sc.at(i+1)):
			sep = 0
			continue
		case g.paren && isDigit(c):
			sep = 0
			continue
		}
		break
	}
	end := i
	if sc.at(end) == 'x' {
		if d := sc.digits(end + 1); d >= 1 && d <= 5 {
			end += 1 + d
		}
	}
	if !sc.endsNumber(end) {
		return 0
	}
	first := gs[0]
	score := float32(0)
	switch {
	case plus:
		if total < 8 || t[first.s] == '0' || (t[first.s] == '1' && total != 11) {
			return 0
		}
		score = 0.9
	case len(gs) >= 2 && !first.paren && first.e-first.s >= 3 && t[first.s] == '0' && t[first.s+1] == '0':
		if total-2 < 8 || t[first.s+2] == '0' {
			return 0
		}
		score = 0.8
	case northAmerican(t, gs):
		score = 0.85
	case national(t, gs, total):
		score = 0.65
	case len(gs) == 1 && compactPhone(t[first.s:first.e]) && sc.keywordNear(p, phoneWords):
		score = 0.6
	default:
		return 0
	}
	if !plus && sc.continuesLeft(p) || sc.idPrefix(p) {
		return 0
	}
	sc.add(p, end, kPhone, score)
	return end
}

// northAmerican matches [1 sep] (NPA) NXX-XXXX and NPA sep NXX sep XXXX.
func northAmerican(t []byte, gs []phoneGroup) bool {
	if len(gs) == 4 && gs[0].e-gs[0].s == 1 && t[gs[0].s] == '1' && !gs[0].paren &&
		(gs[1].sep == '-' || gs[1].sep == ' ' || gs[1].sep == '.') {
		gs = gs[1:]
	}
	if len(gs) != 3 || gs[0].e-gs[0].s != 3 || gs[1].e-gs[1].s != 3 || gs[2].e-gs[2].s != 4 || gs[1].paren || gs[2].paren {
		return false
	}
	s1, s2 := gs[1].sep, gs[2].sep
	if gs[0].paren {
		return (s1 == ' ' || s1 == 0 || s1 == '-') && (s2 == '-' || s2 == '.' || s2 == ' ')
	}
	if s1 != s2 || (s1 != '-' && s1 != '.' && s1 != ' ') {
		return false
	}
	if s1 == ' ' { // spaces alone are common in other numbers: insist on valid NANP codes
		return t[gs[0].s] >= '2' && t[gs[1].s] >= '2'
	}
	return true
}

// national matches a number with a trunk 0: 10 or 11 digits in 2 to 5
// groups of 2 to 5 digits separated the same way throughout.
func national(t []byte, gs []phoneGroup, total int) bool {
	if len(gs) < 2 || len(gs) > 5 || t[gs[0].s] != '0' || total < 10 || total > 11 {
		return false
	}
	var sep byte
	for k, g := range gs {
		if l := g.e - g.s; l < 2 || l > 5 || (k > 0 && g.paren) {
			return false
		}
		if k == 0 {
			continue
		}
		if k == 1 && gs[0].paren {
			if g.sep != ' ' && g.sep != 0 {
				return false
			}
			continue
		}
		if g.sep != ' ' && g.sep != '-' && g.sep != '.' || (sep != 0 && g.sep != sep) {
			return false
		}
		sep = g.sep
	}
	return true
}

// compactPhone accepts 10 digits with valid NANP codes, 11 starting with 1,
// or 10 or 11 starting with a trunk 0.
func compactPhone(d []byte) bool {
	switch {
	case len(d) == 10 && d[0] >= '2' && d[3] >= '2':
		return true
	case len(d) == 11 && d[0] == '1' && d[1] >= '2' && d[4] >= '2':
		return true
	case (len(d) == 10 || len(d) == 11) && d[0] == '0' && d[1] != '0':
		return true
	}
	return false
}
