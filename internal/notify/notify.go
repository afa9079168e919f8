// Package notify decides which notification mails a stored message calls
// for and builds their exact bytes. It is pure: no database, no network.
//
// Three kinds of mail go out: to a ticket type's admin_email when a ticket
// is opened or a message joins one, and to the requester to acknowledge a
// new ticket. Every one of them is built so that it cannot start a mail
// loop with an auto-responder, a mailing list or another fetcher: the
// planner never answers automatic mail (RFC 3834 section 2), and the built
// header says what the mail is (Auto-Submitted, X-Auto-Response-Suppress,
// Precedence, X-Fetcher-Notification) so that others do not answer it.
package notify

import "github.com/fetcherhq/fetcher/internal/ticket"

// Kinds (outbox.kind).
const (
	KindNewTicket = "new_ticket"      // to admin_email: a ticket was opened
	KindReply     = "reply"           // to admin_email: a message joined a ticket
	KindAck       = "acknowledgement" // to the requester: we got it, here is your number
)

// TicketType is what notify needs of a ticket_types row.
type TicketType struct {
	Name          string
	AdminEmail    string // may be "", one address, or a comma-separated list (parsed with net/mail)
	NotifyNew     bool
	NotifyReplies bool
	Acknowledge   bool
	// AckText is the admin's text for the acknowledgement body, with the
	// placeholders {ticket} {subject} {name}; "" means the default text.
	AckText string
}

// Sender is the mailbox that sends.
type Sender struct {
	MailboxName string
	Address     string   // From address (mailboxes.smtp_from, else username)
	Name        string   // From display name, may be ""
	Own         []string // every address of this mailbox (username, smtp_from, smtp_username): never acknowledged
}

// Event is a message just stored.
type Event struct {
	TicketID      int64
	TicketSubject string // tickets.subject
	Created       bool   // it opened the ticket
	Collecting    bool   // it joined the mailbox's collecting ticket for auto-replies
	Message       *ticket.Message
	KnownOutgoing bool // its own Message-ID is one we sent (outbox.message_id)
	RecentAcks    int  // acknowledgements queued to this requester in the rate window
	AckLimit      int  // at most this many per requester per window; <= 0 means no limit
}

// Draft is one notification to queue. Suppressed != "" means: not to be
// sent; the reason, in plain words, is recorded. A suppressed draft has
// Kind, Recipient (as far as known), Subject and the reason, but no Body.
type Draft struct {
	Kind, Recipient, Subject, Body string
	InReplyTo, References          string // header values to send ("" = none)
	Suppressed                     string
}
