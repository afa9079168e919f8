package ticket

import (
	"unicode/utf8"

	"github.com/gogs/chardet"
)

// minDetectConfidence is the chardet confidence (0–100) above which a
// detected charset is used for text that declared none. enmime asks for
// more, which misses short Cyrillic or Greek mails (KOI8-R scores about 60
// on a paragraph); below it the windows-1252 fallback of clean applies,
// which is right for the Western mail that makes up most undeclared text.
const minDetectConfidence = 50

// detectCharset decodes body text that is still not UTF-8 after enmime,
// because its part declared no charset or an unknown one: the charset is
// detected (RFC 2045 says undeclared means US-ASCII, but 8-bit mail
// without a charset is common). Text that is mostly valid UTF-8 is left
// alone: it mixes parts, and decoding all of it in one detected charset
// would garble the part that was right.
func detectCharset(s string, html bool) string {
	if utf8.ValidString(s) || mostlyUTF8(s) {
		return s
	}
	d := chardet.NewTextDetector()
	if html {
		d = chardet.NewHtmlDetector()
	}
	best, err := d.DetectBest([]byte(s))
	if err != nil || best.Confidence < minDetectConfidence {
		return s
	}
	return decodeCharset(s, best.Charset)
}

// mostlyUTF8 reports whether s has at least as many valid multi-byte UTF-8
// sequences as invalid bytes. 8-bit text in another charset forms a valid
// sequence now and then by chance (KOI8-R "сё" is 0xD3 0xA3), but far
// fewer than it has invalid bytes.
func mostlyUTF8(s string) bool {
	valid, invalid := 0, 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			invalid++
		case size > 1:
			valid++
		}
		i += size
	}
	return valid >= invalid
}
