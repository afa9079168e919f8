package tnef

// htmlDetectTokens is how many leading tokens MS-OXRTFEX 2.2.3.1 tells a
// reader to inspect for \fromhtml1.
const htmlDetectTokens = 10

// isEncapsulatedHTML reports whether rtf carries HTML encapsulated as
// described in MS-OXRTFEX 2.2.3.1: a \fromhtml1 control word among the first
// tokens of the document header.
func isEncapsulatedHTML(rtf []byte) bool {
	lex := lexer{data: rtf}
	for i := 0; i < htmlDetectTokens; i++ {
		t := lex.next()
		switch {
		case t.kind == tokEOF:
			return false
		case t.kind != tokWord:
			continue
		case string(t.name) == "fromhtml":
			return t.param == 1
		case string(t.name) == "fromtext":
			return false
		}
	}
	return false
}

// rtfHTML extracts encapsulated HTML (MS-OXRTFEX 2.2.3.2). It copies the
// content of {\*\htmltag} groups and the text outside \htmlrtf spans, and
// skips everything else: the font and colour tables, other \* destinations
// (including \*\mhtmltag, whose rewritten URLs the htmltag copy supersedes)
// and the RTF-only rendering. \par and \line become CRLF, \tab a tab;
// \'hh bytes inside tags use the \ansicpg code page and outside them the
// current font's charset; \uN gives the Unicode character.
func rtfHTML(rtf []byte) string {
	return newRTFWalker(rtf, modeHTML).run()
}
