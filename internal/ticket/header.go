package ticket

import (
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"time"
)

// header reads the top-level header fields of a message.
type header struct {
	fields textproto.MIMEHeader
	// hint is the charset for unencoded 8-bit bytes in header values: the
	// charset of the message's text, as the sending client used it for both.
	hint string
}

// raw returns the first value of a field, unfolded and with 8-bit bytes
// decoded, but without RFC 2047 decoding.
func (h header) raw(name string) string {
	return oneLine(rawToUTF8(h.fields.Get(name), h.hint))
}

// all is raw for every value of a field, joined with ", ", for address
// fields that broken mailers repeat.
func (h header) all(name string) string {
	v := strings.Join(h.fields.Values(name), ", ")
	return oneLine(rawToUTF8(v, h.hint))
}

// has reports whether the field is present with a non-blank value.
func (h header) has(name string) bool {
	return h.raw(name) != ""
}

// text returns a field's value fully decoded (RFC 2047), on one line.
func (h header) text(name string) string {
	return oneLine(decodeWords(h.raw(name)))
}

// wordDecoder decodes RFC 2047 encoded words in any charset lookupCharset knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader is a mime.WordDecoder CharsetReader. An unknown charset
// passes the bytes through: most such words are ASCII or UTF-8 under a
// made-up name, and clean repairs the rest, which reads better than
// leaving "=?x-unknown?Q?...?=" for staff.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	if e := lookupCharset(charset); e != nil {
		return e.NewDecoder().Reader(r), nil
	}
	return r, nil
}

// encodedWord matches one RFC 2047 encoded word.
var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeWords decodes RFC 2047 encoded words. When the header as a whole
// does not decode (an unknown charset, a broken word), each word is decoded
// on its own and words that still fail stay as they were.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if out, err := wordDecoder.DecodeHeader(s); err == nil {
		return out
	}
	return encodedWord.ReplaceAllStringFunc(s, func(w string) string {
		if out, err := wordDecoder.Decode(w); err == nil {
			return out
		}
		return w
	})
}

// messageID returns the first "<id>" in a Message-ID value. A bare id, as
// some broken mailers send, is put in angle brackets so that it matches the
// In-Reply-To and References of replies.
func messageID(v string) string {
	if ids := bracketIDs(v); len(ids) > 0 {
		return ids[0]
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return ""
	}
	if id := strings.Trim(f[0], "<>"); id != "" {
		return "<" + id + ">"
	}
	return ""
}

// dateLayouts are tried after net/mail's RFC 5322 parser, for Date values
// seen in the wild that it rejects.
var dateLayouts = []string{
	"Mon Jan _2 15:04:05 2006",     // ctime
	"Mon Jan _2 15:04:05 MST 2006", // date(1)
	time.RFC3339,                   // some web forms
	"Mon, _2 Jan 2006 15:04:05",    // no zone: taken as UTC
	"_2 Jan 2006 15:04:05",         // no weekday, no zone
}

// parseDate parses a Date value into UTC. ok is false when it cannot, or
// when the year is outside 1900–9999 (a broken clock, or a value the
// database would reject).
func parseDate(v string) (t time.Time, ok bool) {
	t, err := mail.ParseDate(v)
	for _, layout := range dateLayouts {
		if err == nil {
			break
		}
		t, err = time.Parse(layout, v)
	}
	if err != nil || t.Year() < 1900 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t.UTC(), true
}
