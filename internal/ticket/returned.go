package ticket

import (
	"bufio"
	"bytes"

	"github.com/jhillyerd/enmime/v2"
)

// returnedTypes are the parts in which a report carries the message it is
// about: the whole message or only its header (RFC 6522 section 3, RFC
// 3464, RFC 6533 for internationalized mail).
var returnedTypes = map[string]bool{
	"message/rfc822":         true,
	"text/rfc822-headers":    true,
	"message/rfc822-headers": true,
	"message/global":         true,
	"message/global-headers": true,
}

// returnedMessage fills ReturnedIDs and ReturnedSubject of a bounce or read
// receipt from the message it returns: a bounce's returned message or header
// (which usually lacks In-Reply-To on the bounce itself), or the
// Original-Message-ID of a read receipt (RFC 8098 section 3.2.5). This is
// how a bounce of a ticket's mail finds that ticket. Other mail carrying a
// message/rfc822 part (a forward, a list digest) is not about that message,
// so it is not threaded by it.
func returnedMessage(m *Message, root *enmime.Part) {
	if !m.bounce || root == nil {
		return
	}
	if p := root.DepthMatchFirst(func(p *enmime.Part) bool { return returnedTypes[p.ContentType] }); p != nil {
		h := partHeader(p.Content)
		ids := []string{messageID(h.raw("Message-ID"))}
		ids = append(ids, idList(h.raw("In-Reply-To"))...)
		refs := idList(h.raw("References"))
		for i := len(refs) - 1; i >= 0; i-- {
			ids = append(ids, refs[i])
		}
		m.ReturnedIDs = ids
		m.ReturnedSubject = h.text("Subject")
		return
	}
	if p := root.DepthMatchFirst(func(p *enmime.Part) bool {
		return p.ContentType == "message/disposition-notification"
	}); p != nil {
		m.ReturnedIDs = []string{messageID(partHeader(p.Content).raw("Original-Message-ID"))}
	}
}

// partHeader reads the header fields at the start of content.
func partHeader(content []byte) header {
	fields, _ := enmime.ReadHeader(bufio.NewReader(bytes.NewReader(content)), discard{})
	return header{fields: fields, hint: "utf-8"}
}
