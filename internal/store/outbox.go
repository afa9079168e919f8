package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/internal/notify"
)

// Outbox statuses (outbox.status).
const (
	OutboxPending    = "pending"
	OutboxSent       = "sent"
	OutboxFailed     = "failed"
	OutboxSuppressed = "suppressed"
)

// OutboxMessage is a row of outbox: one notification, written in the
// transaction that stored the message it is about and sent afterwards.
type OutboxMessage struct {
	ID               int64 `gorm:"primaryKey"`
	MailboxID        int64
	TicketID         *int64
	TicketMessageID  *int64
	Kind             string
	Recipient        string
	RecipientKey     string
	Subject          string
	BodyText         string
	MessageID        string
	InReplyTo        *string
	ReferencesHeader *string
	Status           string
	Attempts         int
	NextAttemptAt    *time.Time
	LastError        *string
	SMTPReply        *string `gorm:"column:smtp_reply"`
	CreatedAt        time.Time
	UpdatedAt        time.Time
	SentAt           *time.Time
}

// TableName maps OutboxMessage to the outbox table.
func (OutboxMessage) TableName() string { return "outbox" }

// Notifying is how the mailbox of a Fetched message sends mail; nil in
// Fetched means it sends none (smtp_enabled is off).
type Notifying struct {
	Sender notify.Sender
	// AckLimit and AckWindow bound the acknowledgements to one requester:
	// at most AckLimit in any AckWindow (0: no limit).
	AckLimit  int
	AckWindow time.Duration
}

// queue writes the notifications a saved message calls for, in the
// transaction that saved it, and returns how many are to be sent.
func (s *Tickets) queue(tx *gorm.DB, f Fetched, saved Saved) (int, error) {
	if f.Notify == nil || (saved.Outcome != Created && saved.Outcome != Appended) {
		return 0, nil
	}
	t, tt, err := ticketWithType(tx, saved.TicketID)
	if err != nil || tt == nil {
		return 0, err
	}
	ev, err := s.event(tx, f, saved, t, tt)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, d := range notify.Plan(notifyType(tt), f.Notify.Sender, ev) {
		if err := s.insertDraft(tx, f, saved, d); err != nil {
			return 0, err
		}
		if d.Suppressed == "" {
			queued++
		}
	}
	return queued, nil
}

// event describes the saved message to notify.Plan, with what only the
// database knows: whether we sent it, and how many acknowledgements its
// sender got lately.
func (s *Tickets) event(tx *gorm.DB, f Fetched, saved Saved, t *Ticket, tt *TicketType) (notify.Event, error) {
	ev := notify.Event{
		TicketID: t.ID, TicketSubject: t.Subject, Created: saved.Outcome == Created,
		Collecting: t.Kind == KindAutoReplies, Message: f.Parsed, AckLimit: f.Notify.AckLimit,
	}
	var err error
	if ev.KnownOutgoing, err = knownOutgoing(tx, f.Parsed.MessageID); err != nil {
		return ev, err
	}
	if tt.Acknowledge && ev.Created && f.Notify.AckLimit > 0 && f.Parsed.FromEmail != "" {
		since := s.db.now().Add(-f.Notify.AckWindow)
		ev.RecentAcks, err = recentAcks(tx, f.MailboxID, f.Parsed.FromEmail, since)
	}
	return ev, err
}

func notifyType(tt *TicketType) notify.TicketType {
	return notify.TicketType{
		Name: tt.Name, AdminEmail: tt.AdminEmail, NotifyNew: tt.NotifyNew,
		NotifyReplies: tt.NotifyReplies, Acknowledge: tt.Acknowledge, AckText: tt.AckText,
	}
}

// ticketWithType reads a ticket and its ticket type; the type is nil when
// the ticket has none (the mailbox feeds no ticket type).
func ticketWithType(tx *gorm.DB, id int64) (*Ticket, *TicketType, error) {
	var t Ticket
	if err := tx.Take(&t, id).Error; err != nil {
		return nil, nil, fmt.Errorf("read ticket %d: %w", id, err)
	}
	if t.TicketTypeID == nil {
		return &t, nil, nil
	}
	var tt TicketType
	err := tx.Take(&tt, *t.TicketTypeID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return &t, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read ticket type %d: %w", *t.TicketTypeID, err)
	}
	return &t, &tt, nil
}

// knownOutgoing reports whether messageID is one we sent: our own mail
// come back (an admin_email that forwards to the mailbox) must never be
// notified about again, or each notification would beget the next.
func knownOutgoing(tx *gorm.DB, messageID string) (bool, error) {
	if messageID == "" {
		return false, nil
	}
	var n int64
	if err := tx.Model(&OutboxMessage{}).Where("message_id = ?", messageID).Count(&n).Error; err != nil {
		return false, fmt.Errorf("look for message id among sent notifications: %w", err)
	}
	return n > 0, nil
}

// recentAcks counts the acknowledgements queued or sent to addr by the
// mailbox since since.
func recentAcks(tx *gorm.DB, mailboxID int64, addr string, since time.Time) (int, error) {
	var n int64
	err := tx.Model(&OutboxMessage{}).
		Where("mailbox_id = ? AND kind = ? AND recipient_key = ? AND created_at > ? AND status IN ?",
			mailboxID, notify.KindAck, strings.ToLower(addr), since.UTC(), []string{OutboxPending, OutboxSent}).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count acknowledgements to the requester: %w", err)
	}
	return int(n), nil
}

func (s *Tickets) insertDraft(tx *gorm.DB, f Fetched, saved Saved, d notify.Draft) error {
	now := s.db.now().UTC()
	ticketID, msgID := saved.TicketID, saved.MessageRowID
	row := &OutboxMessage{
		MailboxID: f.MailboxID, TicketID: &ticketID, TicketMessageID: &msgID,
		Kind: d.Kind, Recipient: d.Recipient, RecipientKey: strings.ToLower(d.Recipient), Subject: d.Subject, BodyText: d.Body,
		MessageID: notify.NewMessageID(ticketID, f.Notify.Sender.Address),
		InReplyTo: opt(d.InReplyTo), ReferencesHeader: opt(d.References),
		Status: OutboxPending, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now,
	}
	if d.Suppressed != "" {
		row.Status, row.NextAttemptAt, row.LastError = OutboxSuppressed, nil, opt(cleanText(d.Suppressed))
	}
	if err := tx.Create(row).Error; err != nil {
		return fmt.Errorf("queue %s notification: %w", d.Kind, err)
	}
	return nil
}

// Outbox reads and updates the notifications waiting to be sent.
type Outbox struct{ db *DB }

// Outbox returns the outbox aggregate.
func (db *DB) Outbox() *Outbox { return &Outbox{db: db} }

// Due returns up to limit pending notifications of a mailbox whose time has
// come, oldest first.
func (o *Outbox) Due(ctx context.Context, mailboxID int64, limit int) ([]OutboxMessage, error) {
	var rows []OutboxMessage
	err := o.db.gorm.WithContext(ctx).
		Where("mailbox_id = ? AND status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
			mailboxID, OutboxPending, o.db.now().UTC()).
		Order("id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read outbox of mailbox %d: %w", mailboxID, err)
	}
	return rows, nil
}

// Waiting counts a mailbox's pending notifications.
func (o *Outbox) Waiting(ctx context.Context, mailboxID int64) (int64, error) {
	var n int64
	err := o.db.gorm.WithContext(ctx).Model(&OutboxMessage{}).
		Where("mailbox_id = ? AND status = ?", mailboxID, OutboxPending).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count outbox of mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

// MarkSent records that the server accepted the notification, with its
// reply (a queue id an admin can trace at the provider).
func (o *Outbox) MarkSent(ctx context.Context, id int64, reply string) error {
	now := o.db.now().UTC()
	return o.update(ctx, id, map[string]any{
		"status": OutboxSent, "sent_at": now, "smtp_reply": opt(cleanText(reply)),
		"attempts": gorm.Expr("attempts + 1"), "next_attempt_at": nil, "last_error": nil,
	})
}

// MarkFailed gives the notification up: the server refused it for good,
// or it kept failing too long. why says it in plain words.
func (o *Outbox) MarkFailed(ctx context.Context, id int64, why string) error {
	return o.update(ctx, id, map[string]any{
		"status": OutboxFailed, "last_error": cleanText(why),
		"attempts": gorm.Expr("attempts + 1"), "next_attempt_at": nil,
	})
}

// Retry records a failed attempt and when to try again.
func (o *Outbox) Retry(ctx context.Context, id int64, why string, next time.Time) error {
	return o.update(ctx, id, map[string]any{
		"last_error": cleanText(why), "attempts": gorm.Expr("attempts + 1"), "next_attempt_at": next.UTC(),
	})
}

// update changes a pending row only: a row another worker finished
// meanwhile keeps its outcome.
func (o *Outbox) update(ctx context.Context, id int64, cols map[string]any) error {
	cols["updated_at"] = o.db.now().UTC()
	err := o.db.gorm.WithContext(ctx).Model(&OutboxMessage{}).
		Where("id = ? AND status = ?", id, OutboxPending).Updates(cols).Error
	if err != nil {
		return fmt.Errorf("update outbox row %d: %w", id, err)
	}
	return nil
}

// List returns a mailbox's notifications, newest first, for admins and
// tests; mailboxID 0 lists every mailbox's.
func (o *Outbox) List(ctx context.Context, mailboxID int64, limit int) ([]OutboxMessage, error) {
	q := o.db.gorm.WithContext(ctx).Order("id DESC").Limit(limit)
	if mailboxID != 0 {
		q = q.Where("mailbox_id = ?", mailboxID)
	}
	var rows []OutboxMessage
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return rows, nil
}

// RecordSendOutcome reports a mailbox's sending on its own columns: a
// failure ("" is success) sets smtp_last_error, and never touches the
// fetching's status, which is fine.
func (s *Mailboxes) RecordSendOutcome(ctx context.Context, id int64, failure string) error {
	now := s.db.now().UTC()
	cols := map[string]any{"smtp_last_success_at": now, "smtp_last_error": nil}
	if failure != "" {
		cols = map[string]any{"smtp_last_error": cleanText(failure), "smtp_last_error_at": now}
	}
	err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).Where("id = ?", id).UpdateColumns(cols).Error
	if err != nil {
		return fmt.Errorf("record sending outcome of mailbox %d: %w", id, err)
	}
	return nil
}

// TicketTypes returns the ticket types a mailbox feeds.
func (s *Mailboxes) TicketTypes(ctx context.Context, id int64) ([]TicketType, error) {
	var tts []TicketType
	if err := s.db.gorm.WithContext(ctx).Where("mailbox_id = ?", id).Order("id").Find(&tts).Error; err != nil {
		return nil, fmt.Errorf("read ticket types of mailbox %d: %w", id, err)
	}
	return tts, nil
}
