package ticket

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// attachments returns every non-body part of the envelope in message order:
// enmime's Inlines, Attachments and OtherParts, each once. src is the text
// enmime parsed. Past lim.Attachments, or once their data does not fit in
// b, the rest are left out (and noted in p) before they are hashed.
func attachments(env *enmime.Envelope, src []byte, lim Limits, b *budget, p *problems) []Attachment {
	if env.Root == nil {
		return nil
	}
	keep := map[*enmime.Part]bool{}
	body := htmlBodyPart(env.Root)
	for _, list := range [][]*enmime.Part{env.Inlines, env.Attachments, env.OtherParts} {
		for _, part := range list {
			keep[part] = part != body && !isTextBody(part)
		}
	}
	parts := env.Root.DepthMatchAll(func(part *enmime.Part) bool { return keep[part] })
	if len(parts) > lim.Attachments {
		p.add("%s", attachmentsNote(lim.Attachments, fmt.Sprint(len(parts))))
		parts = parts[:lim.Attachments]
	}
	original := originalBytes(src, env.Root, parts)
	out := make([]Attachment, 0, len(parts))
	for i, part := range parts {
		data, ok := original[part]
		if !ok {
			data = part.Content
		}
		if b.take(len(data)) {
			out = append(out, newAttachment(part, data, i+1))
		}
	}
	return out
}

// attachmentsNote is the ParseError line of a message with more than
// limit attachments; count is its figure.
func attachmentsNote(limit int, count string) string {
	return overLimit("FETCHER_MAX_ATTACHMENTS", int64(limit), "the message has "+count+" attachments",
		fmt.Sprintf("only the first %d were kept", limit))
}

// htmlBodyPart is the part enmime took BodyHTML from.
func htmlBodyPart(root *enmime.Part) *enmime.Part {
	return root.DepthMatchFirst(func(p *enmime.Part) bool {
		return p.ContentType == "text/html" && p.Disposition != "attachment"
	})
}

// isTextBody reports whether enmime already put the part into BodyText: a
// text/plain part that is not an attachment. Apple Mail marks such parts
// inline, which lands them in Inlines too; one with a filename is kept as an
// attachment as well, since the sender meant it as a file.
func isTextBody(p *enmime.Part) bool {
	return p.ContentType == "text/plain" && p.Disposition != "attachment" && p.FileName == ""
}

// newAttachment builds the Attachment for the n-th kept part.
func newAttachment(p *enmime.Part, data []byte, n int) Attachment {
	sum := sha256.Sum256(data)
	return Attachment{
		Filename:    filename(p, n),
		ContentType: contentType(p),
		ContentID:   contentID(p),
		Inline:      isInline(p),
		Data:        data,
		SHA256:      hex.EncodeToString(sum[:]),
	}
}

// isInline reports whether a part is shown within the body: an inline
// disposition, or a Content-ID without an attachment disposition (images of
// multipart/related often have no disposition at all). A forwarded message
// is always an attachment, even when Thunderbird marks it inline.
func isInline(p *enmime.Part) bool {
	if contentType(p) == "message/rfc822" || p.Disposition == "attachment" {
		return false
	}
	return p.Disposition == "inline" || contentID(p) != ""
}

// contentType is the part's media type, application/octet-stream if unknown.
func contentType(p *enmime.Part) string {
	if ct := strings.ToLower(strings.TrimSpace(p.ContentType)); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// contentID is the raw Content-ID without angle brackets. enmime's ContentID
// URL-unescapes it ("+" becomes a space), which would break "cid:" links.
func contentID(p *enmime.Part) string {
	return strings.Trim(oneLine(p.Header.Get("Content-ID")), "<> ")
}

// filename is the part's decoded file name without directories, or a
// generated one: the subject for a forwarded message ("Hello.eml"), else
// "attachment-N" with an extension for the content type.
func filename(p *enmime.Part, n int) string {
	if name := baseName(oneLine(p.FileName)); name != "" {
		return name
	}
	if contentType(p) == "message/rfc822" {
		if name := subjectFilename(p.Content); name != "" {
			return name + ".eml"
		}
	}
	return fmt.Sprintf("attachment-%d%s", n, extension(contentType(p)))
}

// baseName strips Windows and Unix directories from a file name, which
// some mailers send and which a careless consumer could write to disk.
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// subjectFilename returns the subject of an embedded message, made safe as
// a file name and at most 80 runes long, or "" when it has none.
func subjectFilename(content []byte) string {
	h := partHeader(content)
	name := strings.Map(func(r rune) rune {
		if r < ' ' || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, clean(h.text("Subject")))
	if r := []rune(strings.TrimSpace(name)); len(r) > 80 {
		name = string(r[:80])
	}
	return strings.TrimSpace(name)
}

// discard is an enmime.ErrorCollector that drops what it gets.
type discard struct{}

func (discard) AddError(string, string, ...any)   {}
func (discard) AddWarning(string, string, ...any) {}

// extensions maps common content types to file name extensions. A fixed
// table, not mime.ExtensionsByType, so names do not depend on the host's
// mime.types.
var extensions = map[string]string{
	"application/pdf":          ".pdf",
	"application/zip":          ".zip",
	"application/msword":       ".doc",
	"application/vnd.ms-excel": ".xls",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":       ".xlsx",
	"application/ms-tnef":              ".dat",
	"application/pkcs7-signature":      ".p7s",
	"image/png":                        ".png",
	"image/jpeg":                       ".jpg",
	"image/gif":                        ".gif",
	"image/webp":                       ".webp",
	"text/plain":                       ".txt",
	"text/html":                        ".html",
	"text/calendar":                    ".ics",
	"text/csv":                         ".csv",
	"text/rfc822-headers":              ".txt",
	"message/rfc822":                   ".eml",
	"message/delivery-status":          ".txt",
	"message/disposition-notification": ".txt",
}

// extension returns the file name extension for a content type, ".bin"
// when unknown.
func extension(ct string) string {
	if ext, ok := extensions[ct]; ok {
		return ext
	}
	return ".bin"
}
