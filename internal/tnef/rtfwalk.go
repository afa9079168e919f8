package tnef

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// rtfMode selects what the walker copies to its output.
type rtfMode uint8

const (
	// modeText copies the text an RTF reader would display.
	modeText rtfMode = iota
	// modeHTML copies encapsulated HTML (MS-OXRTFEX 2.2.3.2): the content
	// of \*\htmltag groups and text outside \htmlrtf spans.
	modeHTML
)

// Limits against hostile input.
const (
	maxRTFDepth = 1000 // nesting depth of groups that is tracked
	maxFonts    = 1000 // font table entries remembered
	maxUC       = 16   // \ucN fallback length
)

// skipDestinations are destinations whose text is never shown: tables,
// document metadata, pictures, headers and footers. Destinations marked with
// \* are skipped as well unless the mode knows them.
var skipDestinations = map[string]bool{
	"colortbl": true, "stylesheet": true, "info": true, "pict": true,
	"listtable": true, "listoverridetable": true, "revtbl": true,
	"rsidtbl": true, "generator": true, "xmlnstbl": true, "filetbl": true,
	"themedata": true, "colorschememapping": true, "datastore": true,
	"latentstyles": true, "pgdsctbl": true, "fldinst": true,
	"header": true, "headerl": true, "headerr": true, "headerf": true,
	"footer": true, "footerl": true, "footerr": true, "footerf": true,
	"footnote": true, "pntxta": true, "pntxtb": true, "xe": true, "tc": true,
	"template": true, "nonshppict": true,
}

// charWords are control words that stand for a character.
var charWords = map[string]string{
	"emdash": "\u2014", "endash": "\u2013", "bullet": "\u2022",
	"lquote": "\u2018", "rquote": "\u2019",
	"ldblquote": "\u201C", "rdblquote": "\u201D",
	"emspace": " ", "enspace": " ", "qmspace": " ",
}

// groupState is the part of the reader state that RTF saves on { and
// restores on } (RTF 1.9.1, "Conventions of an RTF Reader"). MS-OXRTFEX
// 2.1.3.1.3 requires \htmlrtf to follow the same rule.
type groupState struct {
	skip    bool // inside a destination that is not shown
	fonttbl bool // inside the font table
	htmltag bool // inside {\*\htmltag}
	htmlrtf bool // inside an \htmlrtf span
	uc      int  // bytes of fallback after \uN
	font    int  // current font, -1 for the default
}

// rtfWalker interprets RTF tokens and collects text.
type rtfWalker struct {
	mode     rtfMode
	lex      lexer
	st       groupState
	stack    []groupState
	overflow int // groups deeper than maxRTFDepth, skipped

	groupStart bool // the previous token opened a group
	starred    bool // \* followed the group start
	skipChars  int  // fallback characters left to skip after \uN

	defaultCP int
	deff      int
	fonts     map[int]int // font number to code page, from \fcharset/\cpg
	fontDef   int         // font being defined inside the font table

	out sink
}

func newRTFWalker(rtf []byte, mode rtfMode) *rtfWalker {
	return &rtfWalker{
		mode:      mode,
		lex:       lexer{data: rtf},
		st:        groupState{skip: true, uc: 1, font: -1},
		defaultCP: defaultCodePage,
		deff:      -1,
		fonts:     map[int]int{},
	}
}

// run walks the whole input and returns the collected text.
func (w *rtfWalker) run() string {
	for {
		t := w.lex.next()
		switch t.kind {
		case tokEOF:
			return w.out.String()
		case tokOpen:
			w.open()
		case tokClose:
			if w.close() {
				// The document is one group; what follows it is not RTF.
				return w.out.String()
			}
		default:
			if w.overflow == 0 {
				w.content(t)
			}
		}
	}
}

func (w *rtfWalker) open() {
	if w.overflow > 0 || len(w.stack) >= maxRTFDepth {
		w.overflow++
		return
	}
	w.stack = append(w.stack, w.st)
	if len(w.stack) == 1 {
		// Text outside the outermost group is not part of the document.
		w.st.skip = false
	}
	w.groupStart, w.starred, w.skipChars = true, false, 0
}

// close ends a group and reports whether it was the outermost one.
func (w *rtfWalker) close() bool {
	if w.overflow > 0 {
		w.overflow--
		return false
	}
	if len(w.stack) == 0 {
		return false // stray } before the document
	}
	w.st = w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	w.groupStart, w.starred, w.skipChars = false, false, 0
	return len(w.stack) == 0
}

// content handles every token except group marks.
func (w *rtfWalker) content(t token) {
	atStart := w.groupStart
	w.groupStart = false
	switch t.kind {
	case tokWord:
		if atStart && w.destination(string(t.name)) {
			return
		}
		w.word(t)
	case tokSymbol:
		if atStart && t.b == '*' {
			w.groupStart, w.starred = true, true
			return
		}
		w.symbol(t.b)
	case tokHex, tokText:
		if w.fallback() || w.hidden() {
			return
		}
		w.out.writeByte(t.b, w.codePage())
	}
}

// destination decides what a group is from its first control word and
// reports whether the word was consumed.
func (w *rtfWalker) destination(name string) bool {
	switch {
	case w.mode == modeHTML && name == "htmltag":
		w.st.htmltag = true
	case name == "fonttbl":
		w.st.skip, w.st.fonttbl = true, true
	case skipDestinations[name], w.starred:
		w.st.skip = true
	default:
		return false
	}
	return true
}

// hidden reports whether text at this point is not copied.
func (w *rtfWalker) hidden() bool {
	if w.st.skip {
		return true
	}
	// MS-OXRTFEX 2.1.3.1.3: nothing inside an \htmlrtf span is copied.
	return w.mode == modeHTML && w.st.htmlrtf
}

// fallback consumes one character of the \ucN fallback that follows \uN and
// reports whether it did.
func (w *rtfWalker) fallback() bool {
	if w.skipChars > 0 {
		w.skipChars--
		return true
	}
	return false
}

// word handles a control word that is not a destination.
func (w *rtfWalker) word(t token) {
	name := string(t.name)
	if name == "bin" {
		w.lex.skip(t.param) // binary data must not be read as RTF
		return
	}
	if w.st.fonttbl {
		w.fontWord(name, t)
		return
	}
	if w.st.skip || w.headerWord(name, t) {
		return
	}
	if name == "htmlrtf" {
		w.st.htmlrtf = !t.hasParam || t.param != 0
		return
	}
	if w.fallback() {
		return
	}
	switch name {
	case "f":
		w.st.font = t.param
	case "uc":
		w.st.uc = max(0, min(t.param, maxUC))
	case "u":
		w.unicode(t.param)
	case "par", "line", "sect", "page", "row":
		w.emit(w.newline())
	case "tab", "cell":
		w.emit("\t")
	default:
		if s, ok := charWords[name]; ok {
			w.emit(s)
		}
	}
}

// headerWord handles the document code page and default font and reports
// whether the word was one of them.
func (w *rtfWalker) headerWord(name string, t token) bool {
	switch name {
	case "ansi":
		w.defaultCP = 1252
	case "mac":
		w.defaultCP = 10000
	case "pc":
		w.defaultCP = 437
	case "pca":
		w.defaultCP = 850
	case "ansicpg":
		if knownCodePage(t.param) {
			w.defaultCP = t.param
		}
	case "deff":
		w.deff = t.param
	default:
		return false
	}
	return true
}

// fontWord records the code page of font table entries: \fN starts an entry,
// \fcharsetN or \cpgN give its code page.
func (w *rtfWalker) fontWord(name string, t token) {
	switch name {
	case "f":
		w.fontDef = t.param
	case "fcharset":
		if cp := charsetCodePage(t.param); cp != 0 {
			w.setFontCodePage(cp)
		}
	case "cpg":
		if knownCodePage(t.param) {
			w.setFontCodePage(t.param)
		}
	}
}

func (w *rtfWalker) setFontCodePage(cp int) {
	if _, ok := w.fonts[w.fontDef]; ok || len(w.fonts) < maxFonts {
		w.fonts[w.fontDef] = cp
	}
}

// codePage is the code page of \'hh bytes at this point. Inside an HTML
// tag MS-OXRTFEX 2.2.3.2 uses the document default; elsewhere the current
// font's charset applies.
func (w *rtfWalker) codePage() int {
	if w.mode == modeHTML && w.st.htmltag {
		return w.defaultCP
	}
	f := w.st.font
	if f < 0 {
		f = w.deff
	}
	if cp, ok := w.fonts[f]; ok {
		return cp
	}
	return w.defaultCP
}

// symbol handles control symbols such as \{ or \~.
func (w *rtfWalker) symbol(c byte) {
	if w.fallback() || w.hidden() {
		return
	}
	switch c {
	case '\\', '{', '}':
		w.emit(string(c))
	case '~':
		w.emit("\u00A0")
	case '_':
		w.emit("-")
	}
	// \- (optional hyphen), \| and \: are formatting only.
}

// unicode handles \uN: N is a signed 16-bit UTF-16 code unit, followed by
// \ucN bytes of fallback for readers without Unicode support.
func (w *rtfWalker) unicode(n int) {
	w.skipChars = w.st.uc
	if w.hidden() {
		return
	}
	if n < 0 {
		n += 1 << 16
	}
	if n <= 0 || n > utf8.MaxRune {
		return
	}
	w.out.writeRune(rune(n))
}

func (w *rtfWalker) emit(s string) {
	if !w.hidden() {
		w.out.writeString(s)
	}
}

// newline is CRLF for HTML, which MS-OXRTFEX 1.3.1 normalises to, and LF
// for plain text.
func (w *rtfWalker) newline() string {
	if w.mode == modeHTML {
		return "\r\n"
	}
	return "\n"
}

// charsetCodePage maps an RTF \fcharset value to a Windows code page, or 0
// when the document default applies (ANSI, default and symbol charsets).
func charsetCodePage(charset int) int {
	switch charset {
	case 77:
		return 10000
	case 128:
		return 932
	case 129:
		return 949
	case 134:
		return 936
	case 136:
		return 950
	case 161:
		return 1253
	case 162:
		return 1254
	case 163:
		return 1258
	case 177:
		return 1255
	case 178:
		return 1256
	case 186:
		return 1257
	case 204:
		return 1251
	case 222:
		return 874
	case 238:
		return 1250
	case 255:
		return 437
	}
	return 0
}

// sink accumulates output. Bytes from \'hh and literal text are buffered so
// that multi-byte code pages (Shift-JIS, GBK, ...) decode whole sequences;
// UTF-16 surrogate halves from consecutive \uN words are paired.
type sink struct {
	sb     strings.Builder
	pend   []byte
	pendCP int
	high   rune // pending high surrogate
}

func (s *sink) writeByte(b byte, cp int) {
	s.flushHigh()
	if len(s.pend) > 0 && cp != s.pendCP {
		s.flushBytes()
	}
	s.pendCP = cp
	s.pend = append(s.pend, b)
}

func (s *sink) writeString(str string) {
	s.flushBytes()
	s.flushHigh()
	s.sb.WriteString(str)
}

func (s *sink) writeRune(r rune) {
	s.flushBytes()
	switch {
	case r >= 0xD800 && r < 0xDC00:
		s.flushHigh()
		s.high = r
		return
	case r >= 0xDC00 && r < 0xE000:
		if s.high != 0 {
			r = utf16.DecodeRune(s.high, r)
			s.high = 0
		} else {
			r = utf8.RuneError
		}
	}
	s.flushHigh()
	s.sb.WriteRune(r)
}

func (s *sink) flushBytes() {
	if len(s.pend) > 0 {
		s.sb.WriteString(decode8(s.pend, s.pendCP))
		s.pend = s.pend[:0]
	}
}

// flushHigh writes an unpaired high surrogate as U+FFFD.
func (s *sink) flushHigh() {
	if s.high != 0 {
		s.sb.WriteRune(utf8.RuneError)
		s.high = 0
	}
}

func (s *sink) String() string {
	s.flushBytes()
	s.flushHigh()
	return s.sb.String()
}
