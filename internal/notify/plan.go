package notify

import (
	"fmt"
	"strings"
)

// Plan returns the notifications that a just stored message calls for,
// suppressed ones included so that the reason is on record.
//
// Mail a fetcher sent (ours or another installation's) and mail whose
// Message-ID we sent are never answered nor notified about: both are our
// own notifications coming back, and answering them is how two systems
// mail each other forever. Admins hear nothing of the collecting ticket,
// where auto-replies gather.
func Plan(tt TicketType, s Sender, ev Event) []Draft {
	m := ev.Message
	if m == nil || m.FromFetcher || ev.KnownOutgoing {
		return nil
	}
	var out []Draft
	if kind := adminKind(tt, ev); kind != "" {
		out = append(out, adminDrafts(kind, tt, s, ev)...)
	}
	if tt.Acknowledge && ev.Created {
		out = append(out, ackDraft(tt, s, ev))
	}
	return out
}

// adminKind returns the kind of admin notification ev calls for, or "".
// Auto-replies are no news to the admin, not even one that opened a
// ticket of its own (mailboxes.auto_reply_tickets): the bounce of a
// notification that kept none of its headers would open a ticket, whose
// notification would bounce in turn.
func adminKind(tt TicketType, ev Event) string {
	switch {
	case ev.Collecting || ev.Message.IsAutoReply:
		return ""
	case ev.Created && tt.NotifyNew:
		return KindNewTicket
	case !ev.Created && tt.NotifyReplies:
		return KindReply
	}
	return ""
}

// adminDrafts returns one draft per address of tt.AdminEmail, or one
// suppressed draft saying that the value is no address list.
func adminDrafts(kind string, tt TicketType, s Sender, ev Event) []Draft {
	raw := strings.TrimSpace(tt.AdminEmail)
	if raw == "" {
		return nil
	}
	subject := adminSubject(kind, ev)
	addrs, err := parseAdminList(raw)
	if err != nil {
		return []Draft{{Kind: kind, Recipient: cut(cleanLine(raw), maxAddress), Subject: subject,
			Suppressed: fmt.Sprintf("ticket_types.admin_email of %q is not an email address: %v; fix it (separate several addresses with commas)",
				cleanLine(tt.Name), err)}}
	}
	body := adminBody(kind, tt, s, ev)
	refs := adminRefs(kind, ev)
	out := make([]Draft, 0, len(addrs))
	for _, a := range addrs {
		d := Draft{Kind: kind, Recipient: a, Subject: subject, Body: body, References: refs}
		if reason := adminSuppressed(a, tt, s, ev); reason != "" {
			d.Body, d.References, d.Suppressed = "", "", reason
		}
		out = append(out, d)
	}
	return out
}

// adminSuppressed returns why the notification to admin address a must
// not go out, or "".
func adminSuppressed(a string, tt TicketType, s Sender, ev Event) string {
	switch {
	case containsFold(s.Own, a) || strings.EqualFold(a, strings.TrimSpace(s.Address)):
		// It would be fetched again as new mail: a ticket per notification.
		return fmt.Sprintf("ticket_types.admin_email of %q is this mailbox itself (%s): the notification would be fetched as new mail; set another address",
			cleanLine(tt.Name), a)
	case strings.EqualFold(a, strings.TrimSpace(ev.Message.FromEmail)):
		return fmt.Sprintf("the message was written by %s, the admin address itself", a)
	}
	return ""
}

// adminSubject is "[#<id>] New ticket: <subject>" or "[#<id>] New reply:
// <subject>". The tag lets the admin's replies find the ticket.
func adminSubject(kind string, ev Event) string {
	what := "New ticket"
	if kind == KindReply {
		what = "New reply"
	}
	return fmt.Sprintf("[#%d] %s: %s", ev.TicketID, what, cleanSubject(ev.TicketSubject, maxTicketSubject))
}

// adminRefs makes the admin's mail client thread the notifications of one
// ticket: a new ticket's notification refers to the requester's message, a
// reply's to the reply and its thread, which starts at that first message.
func adminRefs(kind string, ev Event) string {
	if kind == KindNewTicket {
		return validID(ev.Message.MessageID)
	}
	return strings.Join(replyRefs(ev.Message), " ")
}

// ackDraft returns the acknowledgement to the requester, or a suppressed
// draft saying why there is none.
func ackDraft(tt TicketType, s Sender, ev Event) Draft {
	m := ev.Message
	from := strings.TrimSpace(m.FromEmail)
	d := Draft{Kind: KindAck, Recipient: cut(cleanLine(from), maxAddress), Subject: ackSubject(ev)}
	if reason := ackSuppressed(s, ev, from); reason != "" {
		d.Suppressed = reason
		return d
	}
	d.Body = ackBody(tt, ev)
	d.InReplyTo = validID(m.MessageID)
	d.References = strings.Join(replyRefs(m), " ")
	return d
}

// ackSuppressed returns why the requester must not be acknowledged, or "".
// Each case is a way an automatic answer goes wrong: a loop with another
// machine (RFC 3834 section 2), mail to ourselves, mail nobody reads, or
// backscatter, where a forged From turns our acknowledgements into spam to
// a victim, which the rate limit bounds.
func ackSuppressed(s Sender, ev Event, from string) string {
	m := ev.Message
	switch {
	case m.IsAutoReply && len(m.ReturnedIDs) > 0:
		return "the message is a bounce or read receipt, a report about earlier mail: answering it could start a mail loop"
	case m.IsAutoReply:
		return "the message is an automatic reply (auto-reply, vacation notice, bounce or read receipt): answering it could start a mail loop"
	case m.NoAutoResponse:
		return "the message says it must not be answered automatically (Auto-Submitted, Precedence bulk/junk/list, a mailing list, or X-Auto-Response-Suppress)"
	case ev.Collecting:
		return "the message went to the collecting ticket for automatic replies"
	case from == "":
		return "the message has no sender address"
	}
	if _, err := parseAddress(from); err != nil {
		return fmt.Sprintf("the sender address %q is not a valid email address: %v", cleanLine(from), err)
	}
	switch {
	case containsFold(s.Own, from) || strings.EqualFold(from, strings.TrimSpace(s.Address)):
		return fmt.Sprintf("the sender is this mailbox itself (%s)", from)
	case isNoReply(from):
		return fmt.Sprintf("the sender %s is a no-reply or mail system address, which reads no answers", from)
	case ev.AckLimit > 0 && ev.RecentAcks >= ev.AckLimit:
		return fmt.Sprintf("already %d acknowledgements to %s in the last window (limit %d, FETCHER_ACK_LIMIT)",
			ev.RecentAcks, from, ev.AckLimit)
	}
	return ""
}

// ackSubject is "[#<id>] <subject>". The tag leads, so a reply's "Re: "
// keeps it and ticket.TicketTag finds it first, before any tag of another
// helpdesk that the customer's subject may carry.
func ackSubject(ev Event) string {
	return fmt.Sprintf("[#%d] %s", ev.TicketID, cleanSubject(ev.TicketSubject, maxTicketSubject))
}
