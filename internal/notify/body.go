package notify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

const (
	// excerptRunes is about how much of the message text an admin
	// notification shows: enough to triage from the inbox.
	excerptRunes = 2000
	// maxListed is how many attachments an admin notification names.
	maxListed = 20
)

// adminBody is the plain text of an admin notification: who wrote, where
// to, the subject, when, an excerpt of the text and the attachments.
func adminBody(kind string, tt TicketType, s Sender, ev Event) string {
	m := ev.Message
	var b strings.Builder
	where := fmt.Sprintf("mailbox %q, ticket type %q", cleanLine(s.MailboxName), cleanLine(tt.Name))
	if kind == KindNewTicket {
		fmt.Fprintf(&b, "A new ticket #%d was opened (%s).\n\n", ev.TicketID, where)
	} else {
		fmt.Fprintf(&b, "A new message was added to ticket #%d (%s).\n\n", ev.TicketID, where)
	}
	fmt.Fprintf(&b, "From:    %s\n", sender(m))
	fmt.Fprintf(&b, "Subject: %s\n", cleanSubject(m.Subject, maxTicketSubject))
	if !m.SentAt.IsZero() {
		fmt.Fprintf(&b, "Sent:    %s\n", m.SentAt.UTC().Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "\n%s\n", excerpt(m.BodyText))
	writeAttachments(&b, m.Attachments)
	if m.ParseError != "" {
		b.WriteString("\nNote: the message could not be fully read; the ticket may lack parts of it.\n")
	}
	b.WriteString("\n-- \nThis is an automatic notification from fetcher.\n")
	return b.String()
}

// sender is "Name <address>", or what there is of it.
func sender(m *ticket.Message) string {
	name, addr := cut(cleanLine(m.FromName), maxName), cut(cleanLine(m.FromEmail), maxAddress)
	switch {
	case addr == "" && name == "":
		return "(unknown sender)"
	case addr == "":
		return name
	case name == "":
		return addr
	}
	return name + " <" + addr + ">"
}

// blankLines matches runs of more than one empty line, which HTML-only
// mail turned into text is full of.
var blankLines = regexp.MustCompile(`\n[ \t]*(?:\n[ \t]*){2,}`)

// excerpt returns the start of text, cut at a line or word boundary in its
// second half when it is longer than excerptRunes, with "…" marking the cut.
func excerpt(text string) string {
	text = strings.TrimSpace(blankLines.ReplaceAllString(cleanText(text), "\n\n"))
	if text == "" {
		return "(no text)"
	}
	r := []rune(text)
	if len(r) <= excerptRunes {
		return text
	}
	head := string(r[:excerptRunes])
	if i := strings.LastIndexByte(head, '\n'); i >= len(head)/2 {
		return strings.TrimRightFunc(head[:i], unicode.IsSpace) + "\n…"
	}
	if i := strings.LastIndexAny(head, " \t"); i >= len(head)/2 {
		return strings.TrimRightFunc(head[:i], unicode.IsSpace) + " …"
	}
	return head + "…"
}

// writeAttachments lists the attachments proper by name and size; inline
// parts (logos, pictures in the text) are only counted.
func writeAttachments(b *strings.Builder, atts []ticket.Attachment) {
	var listed, inline int
	for _, a := range atts {
		if a.Inline {
			inline++
			continue
		}
		if listed == 0 {
			b.WriteString("\nAttachments:\n")
		}
		if listed++; listed <= maxListed {
			fmt.Fprintf(b, "  %s (%s)\n", cut(cleanLine(a.Filename), maxName), size(len(a.Data)))
		}
	}
	if listed > maxListed {
		fmt.Fprintf(b, "  and %d more\n", listed-maxListed)
	}
	if inline > 0 {
		fmt.Fprintf(b, "\nInline parts (pictures in the text): %d\n", inline)
	}
}

// size formats a byte count for people.
func size(n int) string {
	switch {
	case n < 1024:
		return strconv.Itoa(n) + " bytes"
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
}

// defaultAck is the acknowledgement unless the ticket type has its own. It
// names nothing the sender wrote: acknowledgements are abused for
// backscatter (a forged From makes us mail the spammer's text to a victim),
// so only the ticket number goes back, and the subject the reply needs.
const defaultAck = `Hello,

we have received your message and opened ticket #{ticket} for it.

Please keep [#{ticket}] in the subject when you write about this request,
for example by replying to this message, so that your mail joins the same
ticket.

This message was sent automatically.
`

// ackBody is the acknowledgement text with its placeholders filled in. It
// never quotes the requester's message (see defaultAck).
func ackBody(tt TicketType, ev Event) string {
	text := cleanText(tt.AckText)
	if strings.TrimSpace(text) == "" {
		text = defaultAck
	}
	m := ev.Message
	name := cut(cleanLine(m.FromName), maxName)
	if name == "" {
		name = cleanLine(m.FromEmail)
	}
	// One pass, so a placeholder inside a filled-in value stays as it is.
	return strings.NewReplacer(
		"{ticket}", strconv.FormatInt(ev.TicketID, 10),
		"{subject}", cleanSubject(ev.TicketSubject, maxTicketSubject),
		"{name}", name,
	).Replace(text)
}
