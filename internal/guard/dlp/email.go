package dlp

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool { return isUpper(c) || isLower(c) }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// at returns text[i], or 0 outside text.
func (sc *scan) at(i int) byte {
	if i < 0 || i >= len(sc.text) {
		return 0
	}
	return sc.text[i]
}

// spanMax returns how many bytes from i are in the set m, counting at most
// max: enough to tell a value that is too long.
func (sc *scan) spanMax(i int, m uint16, max int) int {
	t := sc.text[i:min(len(sc.text), i+max)]
	j := 0
	for j < len(t) && class[t[j]]&m != 0 {
		j++
	}
	return j
}

// span returns how many bytes from i are in the set m.
func (sc *scan) span(i int, m uint16) int {
	t := sc.text
	j := i
	for j < len(t) && class[t[j]]&m != 0 {
		j++
	}
	return j - i
}

// emailLocal is what an address's local part may hold here: the dot-atom
// characters people use (RFC 5322 allows more, which mostly turns up in
// code rather than in addresses).
func emailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// emails finds addresses around each '@' in text[ws:we].
func (sc *scan) emails(ws, we int) {
	t := sc.text
	for a := ws; a < we; a++ {
		if t[a] != '@' {
			continue
		}
		// Local part, backwards from '@'.
		j := a
		for j > ws && emailLocal(t[j-1]) && a-j < 64 {
			j--
		}
		if j > ws && emailLocal(t[j-1]) {
			continue // longer than 64 bytes
		}
		for j < a && t[j] == '.' {
			j++
		}
		if j == a || t[a-1] == '.' {
			continue
		}
		// Domain: labels of letters, digits and '-', separated by dots.
		k, labels, tldS := a+1, 0, 0
		for {
			ls := k
			for k < we && (isAlnum(t[k]) || t[k] == '-') && k-ls <= 63 {
				k++
			}
			if k == ls || k-ls > 63 || t[ls] == '-' || t[k-1] == '-' {
				break
			}
			labels++
			tldS = ls
			if k+1 < we && t[k] == '.' && isAlnum(t[k+1]) {
				k++
				continue
			}
			break
		}
		if labels < 2 || k-(a+1) > 253 {
			continue
		}
		tld := t[tldS:k]
		if !validTLD(tld) {
			continue
		}
		if c := sc.at(k); c == '@' || c == '_' || isAlnum(c) {
			continue
		}
		sc.add(j, k, kEmail, 0.95)
		a = k - 1
	}
}

// validTLD accepts 2 to 24 letters (or an IDN "xn--" label) that are not a
// file extension.
func validTLD(tld []byte) bool {
	if len(tld) >= 5 && (tld[0]|0x20) == 'x' && (tld[1]|0x20) == 'n' && tld[2] == '-' && tld[3] == '-' {
		return true
	}
	if len(tld) < 2 || len(tld) > 24 {
		return false
	}
	var low [24]byte
	for i, c := range tld {
		if !isAlpha(c) {
			return false
		}
		low[i] = c | 0x20
	}
	// File extensions that follow '@' in names like "icon@2x.png"; none
	// of them is a top-level domain.
	switch string(low[:len(tld)]) {
	case "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "avif", "heic", "pdf":
		return false
	}
	return true
}
