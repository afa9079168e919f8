package notify

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

var testSender = Sender{
	MailboxName: "support",
	Address:     "support@example.org",
	Name:        "Example Support",
	Own:         []string{"support@example.org", "SMTP-User@example.org"},
}

func allOn() TicketType {
	return TicketType{Name: "IT", AdminEmail: "admin@example.org", NotifyNew: true, NotifyReplies: true, Acknowledge: true}
}

func newEvent() Event {
	return Event{
		TicketID:      42,
		TicketSubject: "Printer on floor 3 is broken",
		Created:       true,
		AckLimit:      5,
		Message: &ticket.Message{
			MessageID:  "<m1@mail.example.com>",
			References: "<r1@example.com> <r2@example.com>",
			FromEmail:  "jane@example.com",
			FromName:   "Jane Doe",
			Subject:    "Printer on floor 3 is broken",
			BodyText:   "It prints only blank pages.\n\nJane",
		},
	}
}

// want is one expected draft: its kind, recipient, and a part of the
// suppression reason ("" = to be sent).
type want struct{ kind, to, suppressed string }

func TestPlan(t *testing.T) {
	t.Parallel()
	admin := want{KindNewTicket, "admin@example.org", ""}
	ack := want{KindAck, "jane@example.com", ""}
	ackNo := func(reason string) want { return want{KindAck, "jane@example.com", reason} }
	tests := []struct {
		name  string
		setup func(tt *TicketType, ev *Event)
		want  []want
	}{
		{"new ticket", nil, []want{admin, ack}},
		{"nil message", func(_ *TicketType, ev *Event) { ev.Message = nil }, nil},
		{"from a fetcher", func(_ *TicketType, ev *Event) { ev.Message.FromFetcher = true }, nil},
		{"our own message id", func(_ *TicketType, ev *Event) { ev.KnownOutgoing = true }, nil},
		{"our own message id in a reply", func(_ *TicketType, ev *Event) {
			ev.KnownOutgoing, ev.Created = true, false
		}, nil},
		{"fetcher mail as a reply", func(_ *TicketType, ev *Event) {
			ev.Message.FromFetcher, ev.Created = true, false
		}, nil},
		{"auto-reply", func(_ *TicketType, ev *Event) {
			ev.Message.IsAutoReply, ev.Message.NoAutoResponse = true, true
		}, []want{ackNo("automatic reply")}}, // no news to the admin, even as a ticket of its own
		{"bounce", func(_ *TicketType, ev *Event) {
			ev.Message.IsAutoReply, ev.Message.NoAutoResponse = true, true
			ev.Message.ReturnedIDs = []string{"<x@example.org>"}
		}, []want{ackNo("bounce")}},
		{"no auto response", func(_ *TicketType, ev *Event) { ev.Message.NoAutoResponse = true },
			[]want{admin, ackNo("must not be answered automatically")}},
		{"own address", func(_ *TicketType, ev *Event) { ev.Message.FromEmail = "Support@Example.ORG" },
			[]want{admin, {KindAck, "Support@Example.ORG", "this mailbox itself"}}},
		{"own smtp username in other case", func(_ *TicketType, ev *Event) { ev.Message.FromEmail = "smtp-user@EXAMPLE.org" },
			[]want{admin, {KindAck, "smtp-user@EXAMPLE.org", "this mailbox itself"}}},
		{"no sender", func(_ *TicketType, ev *Event) { ev.Message.FromEmail = "" },
			[]want{admin, {KindAck, "", "no sender address"}}},
		{"invalid sender", func(_ *TicketType, ev *Event) { ev.Message.FromEmail = "jane at example" },
			[]want{admin, {KindAck, "jane at example", "not a valid email address"}}},
		{"sender with line break", func(_ *TicketType, ev *Event) { ev.Message.FromEmail = "a@b.example\r\nBcc: v@x.example" },
			[]want{admin, {KindAck, "a@b.example Bcc: v@x.example", "not a valid email address"}}},
		{"rate limit reached", func(_ *TicketType, ev *Event) { ev.RecentAcks, ev.AckLimit = 3, 3 },
			[]want{admin, ackNo("already 3 acknowledgements to jane@example.com")}},
		{"rate limit exceeded", func(_ *TicketType, ev *Event) { ev.RecentAcks, ev.AckLimit = 9, 3 },
			[]want{admin, ackNo("FETCHER_ACK_LIMIT")}},
		{"under the rate limit", func(_ *TicketType, ev *Event) { ev.RecentAcks, ev.AckLimit = 2, 3 }, []want{admin, ack}},
		{"no rate limit", func(_ *TicketType, ev *Event) { ev.RecentAcks, ev.AckLimit = 1000, 0 }, []want{admin, ack}},
		{"collecting ticket", func(_ *TicketType, ev *Event) {
			ev.Created, ev.Collecting = false, true
			ev.Message.IsAutoReply, ev.Message.NoAutoResponse = true, true
		}, nil},
		{"auto-reply opens the collecting ticket", func(_ *TicketType, ev *Event) {
			ev.Collecting = true
			ev.Message.IsAutoReply, ev.Message.NoAutoResponse = true, true
		}, []want{ackNo("automatic reply")}},
		{"collecting ticket without auto-reply signs", func(_ *TicketType, ev *Event) { ev.Collecting = true },
			[]want{ackNo("collecting ticket")}},
		{"all flags off", func(tt *TicketType, _ *Event) { *tt = TicketType{Name: "IT", AdminEmail: "admin@example.org"} }, nil},
		{"notify new off", func(tt *TicketType, _ *Event) { tt.NotifyNew = false }, []want{ack}},
		{"acknowledge off", func(tt *TicketType, _ *Event) { tt.Acknowledge = false }, []want{admin}},
		{"no admin email", func(tt *TicketType, _ *Event) { tt.AdminEmail = "  " }, []want{ack}},
		{"reply", func(_ *TicketType, ev *Event) { ev.Created = false },
			[]want{{KindReply, "admin@example.org", ""}}},
		{"reply with replies off", func(tt *TicketType, ev *Event) { ev.Created, tt.NotifyReplies = false, false }, nil},
		{"auto-reply to a ticket", func(_ *TicketType, ev *Event) {
			ev.Created, ev.Message.IsAutoReply, ev.Message.NoAutoResponse = false, true, true
		}, nil},
		{"several admins", func(tt *TicketType, _ *Event) {
			tt.AdminEmail = "a@example.org, Boss <boss@example.org>,A@EXAMPLE.org"
			tt.Acknowledge = false
		}, []want{{KindNewTicket, "a@example.org", ""}, {KindNewTicket, "boss@example.org", ""}}},
		{"admin list with semicolons", func(tt *TicketType, _ *Event) {
			tt.AdminEmail, tt.Acknowledge = "a@example.org; b@example.org", false
		}, []want{{KindNewTicket, "a@example.org", ""}, {KindNewTicket, "b@example.org", ""}}}, // as Outlook writes lists
		{"admin email no address", func(tt *TicketType, _ *Event) {
			tt.AdminEmail, tt.Acknowledge = "helpdesk team\r\n", false
		}, []want{{KindNewTicket, "helpdesk team", "fix it"}}},
		{"admin email is the mailbox", func(tt *TicketType, _ *Event) {
			tt.AdminEmail, tt.Acknowledge = "admin@example.org, SUPPORT@example.org", false
		}, []want{admin, {KindNewTicket, "SUPPORT@example.org", "this mailbox itself"}}},
		{"admin wrote the message", func(tt *TicketType, ev *Event) {
			ev.Message.FromEmail, tt.Acknowledge = "Admin@example.org", false
		}, []want{{KindNewTicket, "admin@example.org", "written by admin@example.org"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tt, ev := allOn(), newEvent()
			if tc.setup != nil {
				tc.setup(&tt, &ev)
			}
			got := Plan(tt, testSender, ev)
			require.Len(t, got, len(tc.want), "drafts: %+v", got)
			for i, w := range tc.want {
				d := got[i]
				require.Equal(t, w.kind, d.Kind, "draft %d", i)
				require.Equal(t, w.to, d.Recipient, "draft %d", i)
				if w.suppressed == "" {
					require.Empty(t, d.Suppressed, "draft %d", i)
					require.NotEmpty(t, d.Body, "draft %d", i)
				} else {
					require.Contains(t, d.Suppressed, w.suppressed, "draft %d", i)
					require.Empty(t, d.Body, "a suppressed draft has no body")
				}
			}
		})
	}
}

func TestPlanNoReplyAddresses(t *testing.T) {
	t.Parallel()
	for addr, suppressed := range map[string]bool{
		"noreply@example.com":            true,
		"no-reply+x123@example.com":      true,
		"No_Reply@example.com":           true,
		"donotreply@example.com":         true,
		"do-not-reply@example.com":       true,
		"do_not_reply@example.com":       true,
		"MAILER-DAEMON@example.com":      true,
		"postmaster@example.com":         true,
		"bounces+abc=x.com@example.com":  true,
		"bounce-123@example.com":         true,
		"noreply.billing@example.com":    true,
		"noreen@example.com":             false,
		"bouncer@example.com":            false,
		"replies@example.com":            false,
		"jane.noreply@example.com":       false,
		"postmaster-general@example.com": true,
	} {
		ev := newEvent()
		ev.Message.FromEmail = addr
		got := Plan(TicketType{Acknowledge: true}, testSender, ev)
		require.Len(t, got, 1, addr)
		if suppressed {
			require.Contains(t, got[0].Suppressed, "no-reply or mail system address", addr)
		} else {
			require.Empty(t, got[0].Suppressed, addr)
		}
	}
}

func TestPlanAck(t *testing.T) {
	t.Parallel()
	got := Plan(TicketType{Acknowledge: true}, testSender, newEvent())
	require.Len(t, got, 1)
	d := got[0]
	require.Equal(t, "[#42] Printer on floor 3 is broken", d.Subject)
	require.Equal(t, "<m1@mail.example.com>", d.InReplyTo)
	require.Equal(t, "<r1@example.com> <r2@example.com> <m1@mail.example.com>", d.References)
	require.Contains(t, d.Body, "opened ticket #42")
	require.Contains(t, d.Body, "keep [#42] in the subject")
	// Backscatter: nothing of what the sender wrote goes back in the body.
	require.NotContains(t, d.Body, "blank pages")
	require.NotContains(t, d.Body, "Jane")
	require.NotContains(t, d.Body, "Printer")
}

func TestPlanAckText(t *testing.T) {
	t.Parallel()
	tt := TicketType{Acknowledge: true, AckText: "Dear {name},\r\nticket {ticket}: {subject}\r\n{unknown} {name}"}
	ev := newEvent()
	ev.Message.FromName = "Jane {ticket}\r\nDoe"
	d := Plan(tt, testSender, ev)[0]
	require.Equal(t, "Dear Jane {ticket} Doe,\nticket 42: Printer on floor 3 is broken\n{unknown} Jane {ticket} Doe", d.Body)

	ev.Message.FromName = ""
	d = Plan(tt, testSender, ev)[0]
	require.True(t, strings.HasPrefix(d.Body, "Dear jane@example.com,\n"), d.Body)
}

// TestPlanSubjectTag: the subjects we send carry the ticket tag that
// threading recognises, also in a reply, also when the customer's subject
// has a tag of another helpdesk or tries to break the header.
func TestPlanSubjectTag(t *testing.T) {
	t.Parallel()
	for _, subject := range []string{
		"Printer broken",
		"",
		"[#999] Re: Fwd: old thread",
		"[Ticket#7] from another helpdesk",
		"Hello\r\nBcc: victim@example.net",
		strings.Repeat("ü", 500),
	} {
		ev := newEvent()
		ev.TicketSubject = subject
		drafts := Plan(allOn(), testSender, ev)
		require.Len(t, drafts, 2)
		for _, d := range drafts {
			require.NotContains(t, d.Subject, "\r")
			require.NotContains(t, d.Subject, "\n")
			for _, s := range []string{d.Subject, "Re: " + d.Subject, "AW: RE: " + d.Subject} {
				n, ok := ticket.TicketTag(s)
				require.True(t, ok, s)
				require.Equal(t, int64(42), n, s)
				require.Contains(t, ticket.ThreadSubject(s), "[#42]", s)
			}
		}
		require.LessOrEqual(t, utf8.RuneCountInString(drafts[1].Subject), len("[#42] ")+maxTicketSubject)
	}
}

func TestPlanReferences(t *testing.T) {
	t.Parallel()
	var refs []string
	for i := range 15 {
		refs = append(refs, fmt.Sprintf("<r%d@example.com>", i))
	}
	tests := []struct {
		name, refs, inReplyTo, want string
	}{
		{"long thread keeps the root and the last nine",
			strings.Join(refs, " "), "",
			"<r0@example.com> " + strings.Join(refs[7:], " ") + " <m1@mail.example.com>"},
		{"no references: the single in-reply-to", "", "<p@example.com>", "<p@example.com> <m1@mail.example.com>"},
		{"no references: several in-reply-to are not used", "", "<p@example.com> <q@example.com>", "<m1@mail.example.com>"},
		{"invalid and duplicate ids dropped", "<a@x> <bad id@x> <a@x> <m1@mail.example.com> <ü@x>", "", "<a@x> <m1@mail.example.com>"},
		{"bare ids of a broken mailer", "a@x.example, b@x.example", "", "<a@x.example> <b@x.example> <m1@mail.example.com>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := newEvent()
			ev.Message.References, ev.Message.InReplyTo = tc.refs, tc.inReplyTo
			d := Plan(TicketType{Acknowledge: true}, testSender, ev)[0]
			require.Equal(t, tc.want, d.References)
			require.LessOrEqual(t, len(strings.Fields(d.References)), maxRefs)
		})
	}
}

func TestPlanAdmin(t *testing.T) {
	t.Parallel()
	ev := newEvent()
	m := ev.Message
	m.SentAt = mustTime(t, "2024-05-25T10:14:15Z")
	m.Attachments = []ticket.Attachment{
		{Filename: "report.pdf", Data: make([]byte, 12*1024+300)},
		{Filename: "logo.png", Inline: true, Data: make([]byte, 10)},
		{Filename: "tiny\r\n.txt", Data: []byte("x")},
	}
	m.ParseError = "date: cannot parse"
	d := Plan(TicketType{Name: "IT", AdminEmail: "admin@example.org", NotifyNew: true}, testSender, ev)[0]
	require.Equal(t, "[#42] New ticket: Printer on floor 3 is broken", d.Subject)
	require.Empty(t, d.InReplyTo)
	require.Equal(t, "<m1@mail.example.com>", d.References)
	for _, s := range []string{
		"A new ticket #42 was opened (mailbox \"support\", ticket type \"IT\").",
		"From:    Jane Doe <jane@example.com>",
		"Subject: Printer on floor 3 is broken",
		"Sent:    Sat, 25 May 2024 10:14:15 +0000",
		"It prints only blank pages.",
		"  report.pdf (12.3 KB)",
		"  tiny .txt (1 bytes)",
		"Inline parts (pictures in the text): 1",
		"could not be fully read",
		"automatic notification",
	} {
		require.Contains(t, d.Body, s)
	}
	require.NotContains(t, d.Body, "logo.png")

	ev.Created = false
	d = Plan(TicketType{Name: "IT", AdminEmail: "admin@example.org", NotifyReplies: true}, testSender, ev)[0]
	require.Equal(t, KindReply, d.Kind)
	require.Equal(t, "[#42] New reply: Printer on floor 3 is broken", d.Subject)
	require.Contains(t, d.Body, "A new message was added to ticket #42")
	require.Equal(t, "<r1@example.com> <r2@example.com> <m1@mail.example.com>", d.References)
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	require.Equal(t, "(no text)", excerpt(" \r\n "))
	require.Equal(t, "a\n\nb", excerpt("a\r\n\r\n\r\n\r\n  \nb\x00"))

	lines := strings.Repeat(strings.Repeat("word ", 15)+"\n", 100) // 7600 runes
	got := excerpt(lines)
	require.True(t, strings.HasSuffix(got, "word\n…"), "cut at a line end: %q", got[len(got)-20:])
	require.LessOrEqual(t, utf8.RuneCountInString(got), excerptRunes+2)

	words := strings.Repeat("wörd ", 1000)
	got = excerpt(words)
	require.True(t, strings.HasSuffix(got, "wörd …"), "cut at a word: %q", got[len(got)-20:])

	solid := strings.Repeat("x", 5000)
	require.Equal(t, strings.Repeat("x", excerptRunes)+"…", excerpt(solid))
}

func TestCleanSubject(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a b c", cleanSubject(" a\r\n\tb\x00\x1b  \u2028c\u202e ", 200))
	require.Equal(t, "(no subject)", cleanSubject("\r\n", 200))
	long := cleanSubject(strings.Repeat("ä", 300), maxTicketSubject)
	require.Equal(t, maxTicketSubject, utf8.RuneCountInString(long))
	require.True(t, strings.HasSuffix(long, "ä…"))
	require.Equal(t, "bad \uFFFD byte", cleanSubject("bad \xff byte", 200))
}
