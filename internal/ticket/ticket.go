// Package ticket turns one fetched email into the values the fetcher stores
// for it (see SCHEMA.md, tables ticket_messages and ticket_attachments).
//
// The package is pure: raw RFC 5322 bytes go in, a *Message comes out. It
// never fails and never panics; a message it cannot fully understand still
// yields a Message with ParseError set, so no mail is lost. Every string it
// returns is valid UTF-8 without NUL bytes, because Postgres rejects both in
// text columns and a row that fails to insert would lose the mail.
package ticket

import "time"

// Message is what the fetcher stores for one fetched email (SCHEMA.md
// ticket_messages).
type Message struct {
	// MessageID is the Message-ID in "<id>" form. A message without one gets
	// a synthetic id derived from its bytes, "<sha256-hex-prefix@fetcher.invalid>",
	// so the same bytes always get the same id.
	MessageID string
	// InReplyTo is the In-Reply-To header as sent (unfolded).
	InReplyTo string
	// References is the References header as sent (unfolded).
	References string
	// FromEmail and FromName are the first From address, decoded (RFC 2047).
	FromEmail, FromName string
	// To and Cc are decoded, comma-separated "Name <addr>" lists.
	To, Cc string
	// Subject is the decoded Subject header.
	Subject string
	// SentAt is the Date header in UTC; zero when absent or unparseable.
	SentAt time.Time
	// BodyText and BodyHTML are the decoded bodies with "\n" line endings.
	// BodyText is derived from the HTML when only HTML came.
	BodyText, BodyHTML string
	// BodyHTMLSafe is BodyHTML sanitized for display (see SanitizeHTML).
	BodyHTMLSafe string
	// IsAutoReply marks mail sent by a machine in answer to other mail:
	// auto-replies, vacation notices, bounces, read receipts (see autoreply.go).
	IsAutoReply bool
	// bounce marks a delivery or read report, whose returned message is
	// what it is about (ReturnedIDs).
	bounce bool
	// NoAutoResponse is true when nothing may be sent back automatically:
	// IsAutoReply, FromFetcher, list mail, or the sender asked for it with
	// X-Auto-Response-Suppress (All, OOF or AutoReply).
	NoAutoResponse bool
	// FromFetcher marks mail sent by a fetcher, ours or another
	// installation's: a notification or acknowledgement, recognised by its
	// X-Fetcher-Notification field. It is never notified about and never
	// acknowledged, so two installations cannot answer each other forever.
	FromFetcher bool
	// ReturnedIDs and ReturnedSubject describe the message an auto-reply
	// returns or reports on: a bounce's returned message or header, a read
	// receipt's Original-Message-ID. Empty for other mail.
	ReturnedIDs     []string
	ReturnedSubject string
	// Attachments holds every non-body part, in message order.
	Attachments []Attachment
	// Size is the length of the raw message in bytes.
	Size int64
	// ParseError is non-empty when the message could not be fully
	// understood: one line per distinct problem, capped. Everything that
	// could be decoded is still filled in.
	ParseError string
}

// Attachment is one non-body MIME part (SCHEMA.md ticket_attachments).
type Attachment struct {
	// Filename is decoded and stripped of any directory; a generated name
	// such as "attachment-1.pdf" when the part has none.
	Filename string
	// ContentType is the media type without parameters, lower case.
	ContentType string
	// ContentID is the Content-ID without angle brackets, as the HTML body
	// refers to it with "cid:".
	ContentID string
	// Inline is true for parts shown within the body (inline disposition or
	// a Content-ID), false for attachments proper.
	Inline bool
	// Data is the decoded content (transfer encoding removed).
	Data []byte
	// SHA256 is the hex SHA-256 of Data.
	SHA256 string
}
