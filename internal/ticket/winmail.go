package ticket

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/inbucket/html2text"

	"github.com/fetcherhq/fetcher/internal/tnef"
)

// isTNEF reports whether an attachment is Outlook's winmail.dat: by type,
// or by name when a gateway relabelled it application/octet-stream.
func isTNEF(a Attachment) bool {
	return a.ContentType == "application/ms-tnef" || a.ContentType == "application/vnd.ms-tnef" ||
		strings.EqualFold(a.Filename, "winmail.dat")
}

// unpackTNEF replaces each winmail.dat among m's attachments with the files
// inside it, and fills the bodies from it when the message has none (an
// Outlook "rich text" mail sent as TNEF alone). A winmail.dat that decodes
// with problems, or past a limit, is kept as it is, beside whatever could
// be read from it, and the problems go to ParseError. What it unpacks to
// is charged to b, and its files count toward lim.Attachments.
func unpackTNEF(m *Message, lim Limits, b *budget, p *problems) {
	var out []Attachment
	overflow := false
	for _, a := range m.Attachments {
		if !isTNEF(a) {
			out = append(out, a)
			continue
		}
		// One more than the limit allows, so that passing it shows.
		allowance := max(lim.Attachments+1-len(out), 1)
		t, err := decodeTNEF(a.Data, allowance, b, p)
		if t == nil {
			if err != nil {
				p.add("winmail.dat %q: %v", a.Filename, err)
			}
			out = append(out, a)
			continue
		}
		overflow = overflow || errors.Is(err, tnef.ErrTooMany) && len(t.Attachments) >= allowance
		out = append(out, unpacked(m, a, t, err, len(out), p)...)
	}
	if len(out) > lim.Attachments {
		count := fmt.Sprint(len(out))
		if overflow {
			count = fmt.Sprintf("more than %d", lim.Attachments)
		}
		p.add("%s", attachmentsNote(lim.Attachments, count))
		out = out[:lim.Attachments]
	}
	m.Attachments = out
}

// unpacked returns what replaces winmail.dat a, decoded as t with err, in
// a message that has n attachments before it: its files, and a itself
// when it is damaged or holds nothing unpacked.
func unpacked(m *Message, a Attachment, t *tnef.Message, err error, n int, p *problems) []Attachment {
	var out []Attachment
	if err != nil || len(t.Attachments) == 0 && t.BodyText == "" && t.BodyHTML == "" && len(t.BodyRTF) == 0 {
		// Damaged, or nothing in it we unpack (a meeting request, a
		// contact card): staff keep the file.
		if err != nil {
			p.add("winmail.dat %q: %v", a.Filename, err)
		}
		out = append(out, a)
	}
	fillFromTNEF(m, t)
	for _, ta := range t.Attachments {
		if err != nil && len(ta.Data) == 0 {
			continue // its data was in the damaged part: the name alone would mislead
		}
		out = append(out, fromTNEF(ta, n+len(out)+1))
	}
	return out
}

// decodeTNEF decodes a winmail.dat with at most attachments files and the
// decoded bytes left in b, and charges its output to b. It returns nil and
// no error, without decoding, when nothing is left.
func decodeTNEF(data []byte, attachments int, b *budget, p *problems) (*tnef.Message, error) {
	if b.over || b.left == 0 {
		b.over, b.partial = true, true
		b.report(p)
		return nil, nil
	}
	t, err := tnef.DecodeWith(data, tnef.Limits{Attachments: attachments, DecodedBytes: b.left})
	if t != nil {
		b.take(tnefSize(t))
	}
	if errors.Is(err, tnef.ErrTooLarge) {
		b.over, b.partial = true, true
		b.report(p)
	}
	return t, err
}

// tnefSize is the bytes t decoded to.
func tnefSize(t *tnef.Message) int {
	n := len(t.BodyText) + len(t.BodyHTML) + len(t.BodyRTF)
	for _, a := range t.Attachments {
		n += len(a.Data)
	}
	return n
}

// fillFromTNEF sets the bodies the MIME message lacked: Outlook usually
// sends a text/plain part beside winmail.dat, but not always.
func fillFromTNEF(m *Message, t *tnef.Message) {
	if m.BodyHTML == "" {
		m.BodyHTML = normalizeNewlines(t.BodyHTML)
	}
	if m.BodyText != "" {
		return
	}
	switch {
	case t.BodyText != "":
		m.BodyText = t.BodyText
	case t.BodyHTML != "":
		m.BodyText, _ = html2text.FromString(t.BodyHTML)
	case len(t.BodyRTF) > 0:
		m.BodyText = tnef.RTFText(t.BodyRTF)
	}
	m.BodyText = normalizeNewlines(m.BodyText)
}

// fromTNEF makes the n-th attachment from a file inside winmail.dat.
func fromTNEF(ta tnef.Attachment, n int) Attachment {
	ct := strings.ToLower(strings.TrimSpace(ta.ContentType))
	name := baseName(oneLine(ta.Filename))
	if ct == "" {
		ct = typeOfExtension(path.Ext(name))
	}
	if name == "" {
		name = fmt.Sprintf("attachment-%d%s", n, extension(ct))
	}
	sum := sha256.Sum256(ta.Data)
	return Attachment{
		Filename: name, ContentType: ct, ContentID: strings.Trim(oneLine(ta.ContentID), "<> "),
		Inline: ta.ContentID != "", Data: ta.Data, SHA256: hex.EncodeToString(sum[:]),
	}
}

// typeOfExtension maps a file extension to a content type, for files in
// winmail.dat without a MIME tag; application/octet-stream when unknown. A
// fixed table, like extensions, so results do not depend on the host.
func typeOfExtension(ext string) string {
	if ct, ok := typesByExtension[strings.ToLower(ext)]; ok {
		return ct
	}
	return "application/octet-stream"
}

var typesByExtension = map[string]string{
	".pdf": "application/pdf", ".zip": "application/zip", ".doc": "application/msword",
	".xls":  "application/vnd.ms-excel",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".png":  "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
	".webp": "image/webp", ".txt": "text/plain", ".htm": "text/html", ".html": "text/html",
	".ics": "text/calendar", ".csv": "text/csv", ".eml": "message/rfc822",
	".msg": "application/vnd.ms-outlook",
}
