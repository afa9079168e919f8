package ticket

import (
	"bufio"
	"bytes"
	"fmt"
	"net/textproto"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
)

// Limits bounds the work ParseWith does on one message, so that hostile
// mail cannot exhaust memory or time. A message past a limit still gives a
// Message: what could be read safely, and a ParseError line that names the
// limit, the message's figure and the setting to raise. A field that is
// zero or less takes its default.
//
// The defaults lie well beyond real mail; see each Default constant.
type Limits struct {
	// HeaderBytes caps the top-level header, in bytes (FETCHER_MAX_HEADER_BYTES).
	HeaderBytes int64
	// HeaderFields caps the number of top-level header fields
	// (FETCHER_MAX_HEADER_FIELDS).
	HeaderFields int
	// MIMEDepth caps how deep multiparts nest (FETCHER_MAX_MIME_DEPTH).
	MIMEDepth int
	// MIMEParts caps the number of MIME body parts, counted by the
	// delimiter lines that open them (FETCHER_MAX_MIME_PARTS).
	MIMEParts int
	// Attachments caps the attachments kept, winmail.dat contents
	// included (FETCHER_MAX_ATTACHMENTS).
	Attachments int
	// DecodedBytes caps the bytes decoded from the message: bodies,
	// attachments, and what winmail.dat and its compressed RTF expand to
	// (FETCHER_MAX_DECODED_BYTES). A winmail.dat counts twice, as itself
	// and as its contents, since both are held while it is unpacked.
	DecodedBytes int64
}

const (
	// DefaultHeaderBytes is the cap mailbox.MaxHeaderBytes already puts on
	// a fetched header. Real headers are 2 to 50 KB; the largest are long
	// recipient lists and ARC/DKIM chains of much-relayed mail.
	DefaultHeaderBytes = 1 << 20
	// DefaultHeaderFields: Microsoft 365 mail carries 60 to 150 fields and
	// each relay adds a Received field; RFC 5321 section 6.3 has servers
	// treat 100 Received fields as a mail loop. 1,000 is far past both,
	// while 1 MiB of short fields would be some 100,000.
	DefaultHeaderFields = 1000
	// DefaultMIMEDepth: real mail nests 3 to 6 deep, a forward of a
	// forward a few more. enmime's time doubles with each level (about
	// 0.5 s at 20), so a 2 KB message nested 40 deep would never finish.
	DefaultMIMEDepth = 12
	// DefaultMIMEParts: real mail has a few dozen parts at most. enmime
	// joins text parts by repeated string concatenation, quadratic in
	// their number: 90,000 parts took 20 s.
	DefaultMIMEParts = 500
	// DefaultAttachments: Exchange Online refuses mail with more than 250
	// attachments; twice that leaves room for other senders. It equals
	// DefaultMIMEParts, so for plain MIME the part limit comes first and
	// this one bounds what a winmail.dat unpacks to.
	DefaultAttachments = 500
	// DefaultDecodedBytes: Exchange Online's largest message, 150 MB,
	// decodes from base64 to at most 113 MiB, and one at the default size
	// limit (50 MiB) to under 40; 128 MiB covers both, while compressed
	// RTF in a winmail.dat (up to 9 times its size) or a stack of parts
	// that expands past it is a bomb.
	DefaultDecodedBytes = 128 << 20
)

// The highest MIMEDepth and MIMEParts settings may allow: past them
// enmime's time is out of bounds again (exponential in depth, quadratic in
// parts), which is what those limits are for.
const (
	MostMIMEDepth = 20
	MostMIMEParts = 10_000
)

// DefaultLimits returns the limits Parse uses.
func DefaultLimits() Limits {
	return Limits{
		HeaderBytes: DefaultHeaderBytes, HeaderFields: DefaultHeaderFields,
		MIMEDepth: DefaultMIMEDepth, MIMEParts: DefaultMIMEParts,
		Attachments: DefaultAttachments, DecodedBytes: DefaultDecodedBytes,
	}
}

// MinLimits returns the smallest limits that still parse ordinary mail
// whole, for settings to refuse less: a 64 KiB header (recipient lists and
// signatures of relayed mail), 200 fields (Microsoft 365 mail after a few
// relays), 8 levels and 100 parts (forwarded mail with attachments), 20
// attachments, and 10 MiB decoded (a scanned document or a few photos).
func MinLimits() Limits {
	return Limits{
		HeaderBytes: 64 << 10, HeaderFields: 200, MIMEDepth: 8, MIMEParts: 100,
		Attachments: 20, DecodedBytes: 10 << 20,
	}
}

// withDefaults returns l with every field that is zero or less set to its
// default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.HeaderBytes <= 0 {
		l.HeaderBytes = d.HeaderBytes
	}
	if l.HeaderFields <= 0 {
		l.HeaderFields = d.HeaderFields
	}
	if l.MIMEDepth <= 0 {
		l.MIMEDepth = d.MIMEDepth
	}
	if l.MIMEParts <= 0 {
		l.MIMEParts = d.MIMEParts
	}
	if l.Attachments <= 0 {
		l.Attachments = d.Attachments
	}
	if l.DecodedBytes <= 0 {
		l.DecodedBytes = d.DecodedBytes
	}
	return l
}

// overLimit is the ParseError line of a message past a limit. The setting
// and its value come first so that the line, capped at maxProblemLen,
// always keeps them.
func overLimit(setting string, limit int64, figure, outcome string) string {
	return fmt.Sprintf("over the limit %s=%d: %s; %s", setting, limit, figure, outcome)
}

// budget is what is left of Limits.DecodedBytes while a message is
// unpacked. Once something does not fit, nothing after it is kept either,
// so what is kept is a prefix of the message.
type budget struct {
	limit int64
	left  int64
	want  int64 // everything asked for, kept or not
	over  bool
	// partial is set when decoding stopped at the limit, so that want
	// falls short of the message's real figure.
	partial  bool
	reported bool // the ParseError line is written
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, left: limit}
}

// take reserves n bytes, reporting whether they fit.
func (b *budget) take(n int) bool {
	b.want += int64(n)
	if b.over || int64(n) > b.left {
		b.over = true
		return false
	}
	b.left -= int64(n)
	return true
}

// cut returns s, shortened on a rune boundary to the bytes left when it
// does not fit, and reserves what it returns. Once something did not fit,
// it returns "".
func (b *budget) cut(s string) string {
	wasOver := b.over
	if b.take(len(s)) {
		return s
	}
	if wasOver {
		return ""
	}
	n := int(min(b.left, int64(len(s))))
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	b.left -= int64(n)
	return s[:n]
}

// report adds the ParseError line of a message past the limit to p, once.
func (b *budget) report(p *problems) {
	if !b.over || b.reported {
		return
	}
	b.reported = true
	figure := fmt.Sprintf("its parts decode to %d bytes", b.want)
	if b.partial {
		figure = fmt.Sprintf("its parts decode to more than %d bytes", b.limit)
	}
	p.add("%s", decodedNote(b.limit, figure))
}

// decodedNote is the ParseError line of a message whose content decodes
// past the limit.
func decodedNote(limit int64, figure string) string {
	return overLimit("FETCHER_MAX_DECODED_BYTES", limit, figure, "parts past the limit were not kept")
}

// headerShape returns the size in bytes of raw's top-level header, up to
// the blank line that ends it or the end of raw, and its number of fields.
func headerShape(raw []byte) (size, fields int) {
	for line := range bytes.Lines(raw) {
		if isBlankLine(line) {
			break
		}
		size += len(line)
		if line[0] != ' ' && line[0] != '\t' {
			fields++
		}
	}
	return size, fields
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// checkHeader returns the ParseError line of a header past lim, or "".
// It runs before enmime, which reads a header into a map of every field.
func checkHeader(raw []byte, lim Limits) string {
	size, fields := headerShape(raw)
	const outcome = "only its main fields were read, not the body"
	switch {
	case int64(size) > lim.HeaderBytes:
		return overLimit("FETCHER_MAX_HEADER_BYTES", lim.HeaderBytes, fmt.Sprintf("the header is %d bytes", size), outcome)
	case fields > lim.HeaderFields:
		return overLimit("FETCHER_MAX_HEADER_FIELDS", int64(lim.HeaderFields), fmt.Sprintf("the header has %d fields", fields), outcome)
	}
	return ""
}

// mainFields are the fields read from a header past the limits: those
// Message is filled from (threading, sender, subject, date) and those that
// tell an auto-reply.
var mainFields = [][]byte{
	[]byte("Message-ID"), []byte("In-Reply-To"), []byte("References"), []byte("From"),
	[]byte("To"), []byte("Cc"), []byte("Subject"), []byte("Date"), []byte("Content-Type"),
	[]byte("Auto-Submitted"), []byte("X-Autoreply"), []byte("X-Autorespond"),
	[]byte("X-Autoresponder"), []byte("Precedence"), []byte("X-Failed-Recipients"),
	[]byte("Return-Path"), []byte("List-Id"), []byte("X-Auto-Response-Suppress"),
}

// mainHeader copies the main fields out of raw's header, skipping the
// rest without copying it. It keeps whole fields only, and at most
// lim.HeaderBytes bytes and lim.HeaderFields fields of them, so what it
// returns can be parsed like a header within the limits.
func mainHeader(raw []byte, lim Limits) []byte {
	var out bytes.Buffer
	fields, start, keep := 0, 0, false
	flush := func(end int) {
		if keep && int64(out.Len()+end-start) <= lim.HeaderBytes && fields < lim.HeaderFields {
			out.Write(raw[start:end])
			fields++
		}
	}
	off := 0
	for line := range bytes.Lines(raw) {
		if isBlankLine(line) {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush(off)
			start, keep = off, isMainField(line)
		}
		off += len(line)
	}
	flush(off)
	out.WriteString("\r\n")
	return out.Bytes()
}

// isMainField reports whether a header line starts one of mainFields. It
// does not allocate: a hostile header may have a million lines.
func isMainField(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) > len("X-Auto-Response-Suppress")+2 {
		return false
	}
	name = bytes.TrimSpace(name)
	for _, f := range mainFields {
		if bytes.EqualFold(name, f) {
			return true
		}
	}
	return false
}

// readHeader reads the header fields at the start of head.
func readHeader(head []byte, p *problems) textproto.MIMEHeader {
	fields, err := enmime.ReadHeader(bufio.NewReader(bytes.NewReader(head)), discard{})
	if err != nil {
		p.add("read header: %v", err)
	}
	return fields
}

// headerOnly is the Message of a message whose header is past the limits:
// the main fields, no body, and note as the first problem.
func headerOnly(raw []byte, lim Limits, note string) *Message {
	var p problems
	p.add("%s", note)
	fields := readHeader(mainHeader(raw, lim), &p)
	m := &Message{}
	fillHeader(m, header{fields: fields, hint: headerCharset(fields)}, &p)
	m.ParseError = p.String()
	return m
}
