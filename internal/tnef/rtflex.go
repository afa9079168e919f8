package tnef

// RTF tokens as defined by the RTF 1.9.1 specification ("RTF Syntax"):
// groups, control words with an optional signed numeric parameter, control
// symbols, hex escapes and plain text.
type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokOpen           // {
	tokClose          // }
	tokWord           // \name or \nameN
	tokSymbol         // \ followed by one non-letter, e.g. \* \{ \~
	tokHex            // \'hh
	tokText           // one literal byte
)

type token struct {
	kind     tokKind
	name     []byte // tokWord: the letters, aliasing the input
	param    int    // tokWord: numeric parameter
	hasParam bool
	b        byte // tokSymbol: the symbol; tokHex, tokText: the byte
}

// Parameters are at most 10 characters and fit a signed 32-bit value; longer
// digit runs are consumed but ignored so that the lexer stays in sync.
const maxParamDigits = 10

var parWord = []byte("par")

// lexer splits RTF into tokens. It never fails: malformed escapes become
// symbols that the walker ignores.
type lexer struct {
	data []byte
	pos  int
}

func (l *lexer) next() token {
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		l.pos++
		switch c {
		case '{':
			return token{kind: tokOpen}
		case '}':
			return token{kind: tokClose}
		case '\\':
			return l.control()
		case '\r', '\n', 0:
			// Line breaks in RTF source carry no meaning; NULs are noise
			// that some writers append.
			continue
		default:
			return token{kind: tokText, b: c}
		}
	}
	return token{kind: tokEOF}
}

// control reads what follows a backslash.
func (l *lexer) control() token {
	if l.pos >= len(l.data) {
		return token{kind: tokEOF}
	}
	c := l.data[l.pos]
	if isLetter(c) {
		return l.word()
	}
	l.pos++
	switch c {
	case '\'':
		if l.pos+1 < len(l.data) {
			hi, ok1 := hexValue(l.data[l.pos])
			lo, ok2 := hexValue(l.data[l.pos+1])
			if ok1 && ok2 {
				l.pos += 2
				return token{kind: tokHex, b: hi<<4 | lo}
			}
		}
	case '\r', '\n':
		// A backslash before a line break is an old spelling of \par.
		return token{kind: tokWord, name: parWord}
	}
	return token{kind: tokSymbol, b: c}
}

// word reads a control word, its optional parameter and the single space
// that may delimit it.
func (l *lexer) word() token {
	start := l.pos
	for l.pos < len(l.data) && isLetter(l.data[l.pos]) {
		l.pos++
	}
	t := token{kind: tokWord, name: l.data[start:l.pos]}
	neg := false
	if l.pos+1 < len(l.data) && l.data[l.pos] == '-' && isDigit(l.data[l.pos+1]) {
		neg = true
		l.pos++
	}
	for n := 0; l.pos < len(l.data) && isDigit(l.data[l.pos]); n++ {
		if n < maxParamDigits {
			t.param = t.param*10 + int(l.data[l.pos]-'0')
		}
		t.hasParam = true
		l.pos++
	}
	t.param = min(t.param, 1<<31-1)
	if neg {
		t.param = -t.param
	}
	if l.pos < len(l.data) && l.data[l.pos] == ' ' {
		l.pos++
	}
	return t
}

// skip advances past n bytes of \binN data.
func (l *lexer) skip(n int) {
	if n > 0 {
		l.pos += min(n, len(l.data)-l.pos)
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
