package tnef

// RTFText returns the readable plain text of an RTF document, for messages
// whose only body is RTF. It is not a converter: formatting is dropped and
// only text survives.
//
// Groups that hold no visible text are skipped: the font, colour and style
// tables, \info, pictures, headers and footers, and every {\*\...}
// destination (so encapsulated HTML tags are dropped too; use the HTML from
// Decode for \fromhtml1 bodies). \'hh escapes are decoded with the code page
// of the current font's \fcharset, else \ansicpg (windows-1252 by default);
// \uN gives the Unicode character and skips its \ucN fallback; \par and
// \line become "\n" and \tab "\t". RTFText never panics; nesting deeper
// than 1000 groups is skipped.
func RTFText(rtf []byte) string {
	return newRTFWalker(rtf, modeText).run()
}
