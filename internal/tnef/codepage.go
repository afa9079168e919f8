package tnef

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// defaultCodePage is used for 8-bit text when the stream names no code
// page: Outlook writes windows-1252 in western locales, and it is a superset
// of ISO-8859-1 for printable characters.
const defaultCodePage = 1252

// Windows code page identifiers that are not single-byte charmaps.
const (
	cpUTF16LE = 1200
	cpUTF8    = 65001
	cpASCII   = 20127
)

// codePages maps Windows code page numbers to decoders. Only code pages that
// MAPI clients really write are listed; anything else falls back to
// windows-1252, which at worst garbles non-ASCII characters.
var codePages = map[int]encoding.Encoding{
	437:   charmap.CodePage437,
	850:   charmap.CodePage850,
	852:   charmap.CodePage852,
	855:   charmap.CodePage855,
	858:   charmap.CodePage858,
	860:   charmap.CodePage860,
	862:   charmap.CodePage862,
	863:   charmap.CodePage863,
	865:   charmap.CodePage865,
	866:   charmap.CodePage866,
	874:   charmap.Windows874,
	932:   japanese.ShiftJIS,
	936:   simplifiedchinese.GBK,
	949:   korean.EUCKR,
	950:   traditionalchinese.Big5,
	1250:  charmap.Windows1250,
	1251:  charmap.Windows1251,
	1252:  charmap.Windows1252,
	1253:  charmap.Windows1253,
	1254:  charmap.Windows1254,
	1255:  charmap.Windows1255,
	1256:  charmap.Windows1256,
	1257:  charmap.Windows1257,
	1258:  charmap.Windows1258,
	10000: charmap.Macintosh,
	20866: charmap.KOI8R,
	21866: charmap.KOI8U,
	28591: charmap.ISO8859_1,
	28592: charmap.ISO8859_2,
	28593: charmap.ISO8859_3,
	28594: charmap.ISO8859_4,
	28595: charmap.ISO8859_5,
	28596: charmap.ISO8859_6,
	28597: charmap.ISO8859_7,
	28598: charmap.ISO8859_8,
	28599: charmap.ISO8859_9,
	28603: charmap.ISO8859_13,
	28605: charmap.ISO8859_15,
	50220: japanese.ISO2022JP,
	51932: japanese.EUCJP,
	51936: simplifiedchinese.GBK,
	51949: korean.EUCKR,
	54936: simplifiedchinese.GB18030,
}

// knownCodePage reports whether decode8 converts cp itself rather than
// falling back to the default.
func knownCodePage(cp int) bool {
	switch cp {
	case cpUTF8, cpUTF16LE, cpASCII:
		return true
	}
	_, ok := codePages[cp]
	return ok
}

// decode8 converts 8-bit text in Windows code page cp to UTF-8. Invalid
// sequences become U+FFFD so that the result is always valid UTF-8.
func decode8(b []byte, cp int) string {
	switch cp {
	case cpUTF8:
		if utf8.Valid(b) {
			return string(b)
		}
		// Writers that claim UTF-8 (usually via PR_INTERNET_CPID) still
		// store 8-bit MAPI strings in the ANSI code page; windows-1252 keeps
		// such text readable instead of turning it into U+FFFD.
		cp = defaultCodePage
	case cpUTF16LE:
		return decodeUTF16LE(b)
	case cpASCII:
		cp = defaultCodePage
	}
	enc, ok := codePages[cp]
	if !ok {
		enc = codePages[defaultCodePage]
	}
	if isASCII(b) {
		// Every supported code page except ISO-2022-JP (where ESC is
		// special, and ESC is ASCII) is ASCII compatible; skip the decoder
		// for the common case.
		if cp != 50220 {
			return string(b)
		}
	}
	s, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		// The x/text decoders replace bad input instead of failing;
		// this is only reached for internal errors. Keep the bytes visible.
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return strings.ToValidUTF8(string(s), "\uFFFD")
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeUTF16LE converts UTF-16LE bytes (PT_UNICODE, MS-OXCDATA 2.11.1) to
// UTF-8. An odd trailing byte is dropped; unpaired surrogates become U+FFFD.
func decodeUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// trimNUL removes the terminating NUL characters that MAPI writers include
// in string lengths.
func trimNUL(s string) string {
	return strings.TrimRight(s, "\x00")
}
