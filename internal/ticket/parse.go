package ticket

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/textproto"
	"slices"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// maxPartErrors caps the problems enmime keeps per part, so hostile input
// cannot grow them without bound.
const maxPartErrors = 20

// parser recovers instead of failing where enmime allows it: malformed parts
// are skipped and noted, a multipart without a boundary is read as one part,
// and text with corrupt base64 keeps what decoded.
// A declared charset is trusted and detection is only the fallback for
// parts without one (see repairText): detection was more than half of the
// parse time.
var parser = enmime.NewParser(
	enmime.DisableCharacterDetection(true),
	enmime.SkipMalformedParts(true),
	enmime.MultipartWOBoundaryAsSinglePart(true),
	enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
	enmime.MaxStoredPartErrors(maxPartErrors),
)

// Parse is ParseWith with DefaultLimits.
func Parse(raw []byte) *Message {
	return ParseWith(raw, Limits{})
}

// ParseWith never fails and never panics: a broken message gives a Message
// with ParseError set and as much as could be decoded (at least Size;
// headers if readable). Raw is not copied into Message (the caller keeps
// it). The work is bounded by lim, whose zero fields take their defaults:
// a message past a limit gives what could be read within it, and a
// ParseError line naming the limit.
func ParseWith(raw []byte, lim Limits) *Message {
	m := parse(raw, lim.withDefaults())
	if m == nil {
		m = &Message{ParseError: "unreadable message"}
	}
	if len(raw) == 0 {
		m.ParseError = "empty message"
	}
	m.finish(raw)
	return m
}

// parse reads raw within lim: only the main header fields when the header
// is past the limits; else the whole message with enmime; else, when
// enmime gives up or the MIME structure is past the limits, the header and
// the rest as text. It returns nil when even that panicked.
func parse(raw []byte, lim Limits) *Message {
	if note := checkHeader(raw, lim); note != "" {
		m, _ := safely(func() (*Message, error) { return headerOnly(raw, lim, note), nil })
		return m
	}
	m, err := safely(func() (*Message, error) { return parseMIME(raw, lim) })
	if err != nil {
		m, _ = safely(func() (*Message, error) { return parseFallback(raw, err, lim), nil })
	}
	return m
}

// safely runs f and turns a panic into an error.
func safely(f func() (*Message, error)) (m *Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("parser panic: %v", r)
		}
	}()
	return f()
}

// parseMIME parses raw with enmime. An error means the MIME structure is
// past lim or enmime gave up on the message as a whole.
func parseMIME(raw []byte, lim Limits) (*Message, error) {
	if err := checkShape(raw, lim); err != nil {
		return nil, err
	}
	var p problems
	b := newBudget(lim.DecodedBytes)
	src := withinDecoded(raw, b, &p)
	env, err := readEnvelope(src)
	if err != nil {
		return nil, err
	}
	if len(src) < len(raw) {
		// The parts past the cut were left out on purpose.
		env.Errors = slices.DeleteFunc(env.Errors, func(e *enmime.Error) bool {
			return e != nil && e.Name == enmime.ErrorMissingBoundary
		})
	} else if lostParts(env) {
		env, src = recoverParts(raw, env, lim, &p)
	}
	h := header{fields: env.Root.Header, hint: textCharset(env.Root)}
	m := &Message{}
	fillHeader(m, h, &p)
	m.BodyText = b.cut(normalizeNewlines(env.Text))
	m.BodyHTML = b.cut(normalizeNewlines(env.HTML))
	m.Attachments = attachments(env, src, lim, b, &p)
	unpackTNEF(m, lim, b, &p)
	b.report(&p)
	returnedMessage(m, env.Root)
	p.addEnmime(env.Errors)
	m.ParseError = p.String()
	return m, nil
}

// withinDecoded returns raw, or when its parts would decode past the
// budget, raw up to the part that passes it (see decodedCut), so that
// enmime never decodes the rest. Only a message larger than the limit
// can pass it here: transfer encodings never expand.
func withinDecoded(raw []byte, b *budget, p *problems) []byte {
	if int64(len(raw)) <= b.limit {
		return raw
	}
	total, cut := decodedCut(raw, b.limit)
	if cut < 0 {
		return raw
	}
	p.add("%s", decodedNote(b.limit, fmt.Sprintf("its parts decode to about %d bytes", total)))
	b.reported = true
	return raw[:cut]
}

// parseFallback reads the header and takes the rest as plain text, for
// mail enmime cannot parse at all or whose structure is past the limits.
func parseFallback(raw []byte, cause error, lim Limits) *Message {
	var p problems
	p.add("%v", cause)
	br := bufio.NewReader(bytes.NewReader(raw))
	fields, err := enmime.ReadHeader(br, discard{})
	if err != nil {
		p.add("read header: %v", err)
	}
	rest, _ := io.ReadAll(br)
	h := header{fields: fields, hint: headerCharset(fields)}
	m := &Message{}
	fillHeader(m, h, &p)
	b := newBudget(lim.DecodedBytes)
	m.BodyText = b.cut(normalizeNewlines(decodeCharset(string(rest), h.hint)))
	b.report(&p)
	m.ParseError = p.String()
	return m
}

// fillHeader sets the Message fields that come from the top-level header.
func fillHeader(m *Message, h header, p *problems) {
	m.MessageID = messageID(h.raw("Message-ID"))
	m.InReplyTo = h.raw("In-Reply-To")
	m.References = h.raw("References")
	if from := h.addresses("From"); len(from) > 0 {
		m.FromEmail, m.FromName = from[0].Address, from[0].Name
	}
	m.To = formatAddresses(h.addresses("To"))
	m.Cc = formatAddresses(h.addresses("Cc"))
	m.Subject = h.text("Subject")
	if d := h.raw("Date"); d != "" {
		var ok bool
		if m.SentAt, ok = parseDate(d); !ok {
			p.add("date: cannot parse %q", d)
		}
	}
	m.IsAutoReply = isAutoReply(h, m.FromEmail)
	m.bounce = isBounce(h, m.FromEmail)
	m.FromFetcher = fromFetcher(h)
	m.NoAutoResponse = m.IsAutoReply || m.FromFetcher || noAutoResponse(h)
}

// textCharset returns the charset of the first text part, the best guess
// for the charset of unencoded 8-bit header bytes.
func textCharset(root *enmime.Part) string {
	p := root.DepthMatchFirst(func(p *enmime.Part) bool {
		return strings.HasPrefix(p.ContentType, "text/") && p.Charset != ""
	})
	if p == nil {
		return ""
	}
	return p.Charset
}

// headerCharset returns the charset parameter of the Content-Type field.
func headerCharset(fields textproto.MIMEHeader) string {
	_, params, _ := mime.ParseMediaType(fields.Get("Content-Type"))
	return params["charset"]
}

// finish sets Size and the synthetic Message-ID, cleans every string and
// sanitizes the HTML.
func (m *Message) finish(raw []byte) {
	m.Size = int64(len(raw))
	if m.MessageID == "" {
		m.MessageID = syntheticID(raw)
	}
	m.clean()
	if m.BodyHTML != "" {
		m.BodyHTMLSafe = SanitizeHTML(m.BodyHTML)
	}
}

// syntheticID derives a stable Message-ID from the message bytes, so the
// same mail fetched twice gets the same id. The .invalid TLD (RFC 2606)
// cannot collide with a real id.
func syntheticID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "<" + hex.EncodeToString(sum[:16]) + "@fetcher.invalid>"
}

// clean applies clean to every string field.
func (m *Message) clean() {
	for _, s := range []*string{
		&m.MessageID, &m.InReplyTo, &m.References, &m.FromEmail, &m.FromName,
		&m.To, &m.Cc, &m.Subject, &m.BodyText, &m.BodyHTML, &m.ParseError,
		&m.ReturnedSubject,
	} {
		*s = clean(*s)
	}
	for i := range m.ReturnedIDs {
		m.ReturnedIDs[i] = clean(m.ReturnedIDs[i])
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		a.Filename, a.ContentType = clean(a.Filename), clean(a.ContentType)
		a.ContentID, a.SHA256 = clean(a.ContentID), clean(a.SHA256)
	}
}
