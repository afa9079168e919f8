package store

import (
	"context"
	"fmt"
	"time"
)

// Ticket is a row of tickets.
type Ticket struct {
	ID             int64 `gorm:"primaryKey"`
	TicketTypeID   *int64
	MailboxID      *int64
	Subject        string
	RequesterEmail *string
	RequesterName  *string
	Status         string
	// Kind is KindMail, or KindAutoReplies for the ticket collecting a
	// mailbox's auto-replies that match no ticket.
	Kind          string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastMessageAt time.Time
}

// Ticket kinds (tickets.kind).
const (
	KindMail        = "mail"
	KindAutoReplies = "auto_replies"
)

// TableName maps Ticket to the tickets table.
func (Ticket) TableName() string { return "tickets" }

// TicketType is a row of ticket_types: where a mailbox's mail goes.
type TicketType struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Task       string
	MailboxID  *int64
	AdminEmail string
	// NotifyNew, NotifyReplies and Acknowledge say what is sent (see
	// package notify); AckText replaces the acknowledgement's default body.
	NotifyNew     bool `gorm:"default:true"`
	NotifyReplies bool
	Acknowledge   bool
	AckText       string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName maps TicketType to the ticket_types table.
func (TicketType) TableName() string { return "ticket_types" }

// TicketMessage is a row of ticket_messages: one fetched message. Optional
// columns are pointers so that an absent value is NULL, not ”: a ticket
// system filtering on "parse_error IS NOT NULL" must see only real errors.
type TicketMessage struct {
	ID               int64 `gorm:"primaryKey"`
	TicketID         int64
	MailboxID        int64
	SourceKey        string
	MessageID        *string
	InReplyTo        *string
	ReferencesHeader *string
	FromEmail        *string
	FromName         *string
	ToAddrs          *string
	CcAddrs          *string
	Subject          *string
	SentAt           *time.Time
	ReceivedAt       time.Time
	BodyText         *string
	BodyHTML         *string `gorm:"column:body_html"`
	BodyHTMLSafe     *string `gorm:"column:body_html_safe"`
	Raw              []byte
	RawTruncated     bool
	SizeBytes        int64
	IsAutoReply      bool
	ParseError       *string
}

// TableName maps TicketMessage to the ticket_messages table.
func (TicketMessage) TableName() string { return "ticket_messages" }

// TicketAttachment is a row of ticket_attachments.
type TicketAttachment struct {
	ID              int64 `gorm:"primaryKey"`
	TicketMessageID int64
	Filename        string
	ContentType     string
	ContentID       *string
	Inline          bool
	SizeBytes       int64
	SHA256          string `gorm:"column:sha256"`
	Data            []byte
}

// TableName maps TicketAttachment to the ticket_attachments table.
func (TicketAttachment) TableName() string { return "ticket_attachments" }

// opt maps "" to NULL for an optional column.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref reads an optional column, NULL as "".
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TicketSummary is a ticket with its message and attachment counts, for
// listings.
type TicketSummary struct {
	ID             int64
	Subject        string
	RequesterEmail string
	RequesterName  string
	Status         string
	Messages       int
	Attachments    int
}

// Summaries lists a mailbox's tickets, oldest first.
func (s *Tickets) Summaries(ctx context.Context, mailboxID int64) ([]TicketSummary, error) {
	var out []TicketSummary
	err := s.db.gorm.WithContext(ctx).Raw(`
		SELECT t.id, t.subject, t.requester_email, t.requester_name, t.status,
		       (SELECT count(*) FROM ticket_messages m WHERE m.ticket_id = t.id) AS messages,
		       (SELECT count(*) FROM ticket_attachments a
		          JOIN ticket_messages m ON m.id = a.ticket_message_id
		         WHERE m.ticket_id = t.id) AS attachments
		  FROM tickets t WHERE t.mailbox_id = ? ORDER BY t.id`, mailboxID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list tickets of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}
