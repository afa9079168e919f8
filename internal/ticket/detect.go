package ticket

import (
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"github.com/jhillyerd/enmime/v2"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

const (
	// minDetectConfidence is the chardet confidence (0–100) above which a
	// detected charset is used for text that declared none. enmime asks
	// for 85, which misses short Cyrillic or Greek mails (KOI8-R scores
	// about 60 on a paragraph).
	minDetectConfidence = 50
	// minDetectBytes is how many 8-bit bytes a text needs before detection
	// is trusted: on a few accented words chardet guesses wildly ("naïve
	// café" comes out ISO-8859-2), and windows-1252, the fallback of clean,
	// is right for the Western mail that makes up most undeclared text.
	minDetectBytes = 20
)

// repairText fixes the charset of body text parts after enmime converted
// them, before it joins them into the envelope's text. Each part is fixed
// on its own, so one part's charset never garbles another's.
func repairText(root *enmime.Part) {
	for _, p := range root.DepthMatchAll(func(p *enmime.Part) bool {
		return p.ContentType == "text/plain" || p.ContentType == "text/html"
	}) {
		p.Content = repairPart(p.Content, p.Charset, p.ContentType == "text/html")
	}
}

// repairPart returns content, converted by enmime from charset, fixed in
// the two ways real mail needs:
//   - UTF-8 labelled ISO-8859-1, windows-1252 or US-ASCII (common from PHP
//     and other scripts) was read byte by byte as Latin-1, "für" becoming
//     "fÃ¼r": the bytes are restored and read as UTF-8;
//   - 8-bit text without a charset, or with one nobody knows, is still not
//     UTF-8: its charset is detected.
func repairPart(content []byte, charset string, html bool) []byte {
	if isLatin(charset) {
		if fixed, ok := undoLatin1(content); ok {
			return fixed
		}
		return content
	}
	if utf8.Valid(content) || mostlyUTF8(content) || highBytes(content) < minDetectBytes {
		return content
	}
	d := chardet.NewTextDetector()
	if html {
		d = chardet.NewHtmlDetector()
	}
	best, err := d.DetectBest(content)
	if err != nil || best.Confidence < minDetectConfidence {
		return content
	}
	return []byte(decodeCharset(string(content), best.Charset))
}

// isLatin reports whether charset is one that UTF-8 is often mislabelled as.
func isLatin(charset string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"'`)) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252",
		"us-ascii", "ascii", "iso-8859-15", "latin-9":
		return true
	}
	return false
}

// undoLatin1 turns text that was decoded from Latin-1 (or windows-1252)
// back into its bytes and returns them when they are UTF-8 with at least
// one multi-byte character, which real Latin-1 text almost never is ("Ã¼"
// is no German anyone writes).
func undoLatin1(content []byte) ([]byte, bool) {
	if isASCII(content) {
		return nil, false
	}
	for _, e := range []encoding.Encoding{charmap.ISO8859_1, charmap.Windows1252} {
		b, err := e.NewEncoder().Bytes(content)
		if err == nil && utf8.Valid(b) && !isASCII(b) {
			return b, true
		}
	}
	return nil, false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func highBytes(b []byte) int {
	n := 0
	for _, c := range b {
		if c >= 0x80 {
			n++
		}
	}
	return n
}

// mostlyUTF8 reports whether b has at least as many valid multi-byte UTF-8
// sequences as invalid bytes: UTF-8 with a stray byte, which clean repairs.
// 8-bit text in another charset forms a valid sequence now and then by
// chance (KOI8-R "сё" is 0xD3 0xA3), but far fewer than it has invalid
// bytes.
func mostlyUTF8(b []byte) bool {
	valid, invalid := 0, 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
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
