package ticket

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// rawParser reads the same tree as parser but leaves every part's content
// as it appears in the message, transfer encoding included.
var rawParser = enmime.NewParser(
	enmime.DisableCharacterDetection(true),
	enmime.SkipMalformedParts(true),
	enmime.MultipartWOBoundaryAsSinglePart(true),
	enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
	enmime.MaxStoredPartErrors(maxPartErrors),
	enmime.RawContent(true),
)

// originalBytes restores the sender's bytes of text attachments. enmime
// converts every text/* part to UTF-8, which is right for bodies but wrong
// for a file: a CSV in windows-1252 or an .ics would be stored altered,
// and its sha256 would no longer match the same file sent elsewhere. So
// the message is read a second time without decoding, and those parts get
// only their transfer encoding removed. Parts of other types are already
// exact. src is the text enmime parsed.
func originalBytes(src []byte, root *enmime.Part, parts []*enmime.Part) map[*enmime.Part][]byte {
	if !anyText(parts) {
		return nil
	}
	env, err := rawParser.ReadEnvelope(bytes.NewReader(src))
	if err != nil || env.Root == nil {
		return nil
	}
	converted := allParts(root)
	raw := allParts(env.Root)
	if len(converted) != len(raw) {
		return nil // not the same tree: keep enmime's content
	}
	out := map[*enmime.Part][]byte{}
	want := map[*enmime.Part]bool{}
	for _, p := range parts {
		want[p] = strings.HasPrefix(p.ContentType, "text/")
	}
	for i, p := range converted {
		if want[p] {
			out[p] = decodeTransfer(raw[i].Content, p.Header.Get("Content-Transfer-Encoding"))
		}
	}
	return out
}

func anyText(parts []*enmime.Part) bool {
	for _, p := range parts {
		if strings.HasPrefix(p.ContentType, "text/") {
			return true
		}
	}
	return false
}

// allParts lists every part of the tree in depth-first order.
func allParts(root *enmime.Part) []*enmime.Part {
	return root.DepthMatchAll(func(*enmime.Part) bool { return true })
}

// decodeTransfer removes a base64 or quoted-printable transfer encoding
// (RFC 2045 section 6), tolerating what broken mailers send: base64 with
// stray characters or missing padding, quoted-printable with bad escapes.
// Whatever decodes before an error is kept.
func decodeTransfer(data []byte, cte string) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return decodeBase64(data)
	case "quoted-printable":
		return decodeQP(data)
	}
	return data
}

// decodeQP decodes quoted-printable (RFC 2045 section 6.7) leniently, as
// the rule for robust decoders there suggests: "=XX" becomes the byte XX,
// "=" at the end of a line joins it to the next, and everything else,
// broken escapes and control bytes such as a form feed included, is kept
// as it is. mime/quotedprintable stops at the first such byte, which would
// cut the file short.
func decodeQP(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		rest := data[i+1:]
		switch {
		case len(rest) >= 2 && isHex(rest[0]) && isHex(rest[1]):
			out = append(out, unhex(rest[0])<<4|unhex(rest[1]))
			i += 2
		case softBreak(rest) > 0:
			i += softBreak(rest)
		default:
			out = append(out, c)
		}
	}
	return out
}

// softBreak returns the length of the line break (after optional trailing
// white space) that follows a "=" ending a line, or 0.
func softBreak(rest []byte) int {
	n := 0
	for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t') {
		n++
	}
	switch {
	case bytes.HasPrefix(rest[n:], []byte("\r\n")):
		return n + 2
	case bytes.HasPrefix(rest[n:], []byte("\n")):
		return n + 1
	}
	return 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// decodeBase64 decodes the base64 alphabet characters of data, ignoring
// line breaks, padding and anything else (RFC 2045 section 6.8 says to
// ignore characters outside the alphabet).
func decodeBase64(data []byte) []byte {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		if isBase64(c) {
			clean = append(clean, c)
		}
	}
	clean = clean[:len(clean)/4*4+tail(len(clean)%4)]
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// tail is how many trailing characters of a group of n can still decode:
// a lone sixth bit group cannot.
func tail(n int) int {
	if n == 1 {
		return 0
	}
	return n
}

func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
