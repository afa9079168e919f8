package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/fetcherhq/fetcher/internal/ticket"
)

// Outcome says what Save did with a message.
type Outcome int

// Outcomes of Save.
const (
	// Created: the message opened a new ticket.
	Created Outcome = iota + 1
	// Appended: the message joined the ticket of a message it replies to.
	Appended
	// Duplicate: a message with the same Message-ID is already stored for
	// this mailbox (a server that renumbered its UIDs, a resend); no row was
	// written, but the source key is remembered.
	Duplicate
	// Known: this source key was stored by an earlier run.
	Known
)

// String names the outcome for logs.
func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Appended:
		return "appended"
	case Duplicate:
		return "duplicate"
	case Known:
		return "known"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Action values: what to do on the server once a message is stored
// (mailboxes.after_fetch).
const (
	ActionKeep     = "keep"
	ActionMarkSeen = "mark_seen"
	ActionMove     = "move"
	ActionDelete   = "delete"
)

// Fetched is one message read from a mailbox, ready to be stored.
type Fetched struct {
	MailboxID int64
	// SourceKey names the message on its server, stable across runs:
	// unique per mailbox.
	SourceKey string
	Raw       []byte
	Parsed    *ticket.Message
	// Action is the after-fetch action owed to the server once the rows
	// are committed; ActionKeep owes nothing.
	Action string
	// Cursor, when set, is advanced in the same transaction.
	Cursor *Cursor
	// Size is the message's size on the server when Raw holds only its
	// header because it is over the size limit; 0 means Raw is complete.
	Size int64
	// AutoReplyTickets lets an auto-reply that matches no ticket open one
	// (mailboxes.auto_reply_tickets); otherwise it joins the mailbox's
	// collecting ticket.
	AutoReplyTickets bool
	// Notify, when set, queues the notifications the message calls for
	// (to the ticket type's admin_email, the acknowledgement to the
	// requester) in the transaction that stores it; nil sends none.
	Notify *Notifying
	// storedKey, when set, is the ticket_messages.source_key to write
	// instead of SourceKey (see saveConflict); the ledger keeps SourceKey.
	storedKey string
}

// size is the message's size on the server.
func (f Fetched) size() int64 {
	if f.Size != 0 {
		return f.Size
	}
	return int64(len(f.Raw))
}

func (f Fetched) rowKey() string {
	if f.storedKey != "" {
		return f.storedKey
	}
	return f.SourceKey
}

// Saved reports what Save did.
type Saved struct {
	Outcome      Outcome
	TicketID     int64
	MessageRowID int64
	// Partial is set by the caller for a message stored incompletely
	// (over the size limit), which owes no after-fetch action.
	Partial bool
	// Notifications counts the notifications queued to be sent about it.
	Notifications int
}

// Tickets writes the rows the ticket system reads.
type Tickets struct{ db *DB }

// Tickets returns the ticket aggregate.
func (db *DB) Tickets() *Tickets { return &Tickets{db: db} }

// Save stores one fetched message exactly once, in one transaction: the
// ticket (new, or the one it replies to), the message, its attachments,
// the ledger entry with the after-fetch action still owed, and the cursor.
// Saving a source key that is already stored changes nothing but the
// cursor and reports Known, so a run that crashed after its commit and
// fetches the message again does not double it.
func (s *Tickets) Save(ctx context.Context, f Fetched) (Saved, error) {
	out, err := s.saveTx(ctx, f)
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		out, err = s.saveConflict(ctx, f)
	}
	if err != nil {
		return Saved{}, fmt.Errorf("save message %s: %w", f.SourceKey, err)
	}
	return out, nil
}

func (s *Tickets) saveTx(ctx context.Context, f Fetched) (Saved, error) {
	var out Saved
	err := s.db.tx(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = s.save(tx, f)
		if err != nil {
			return err
		}
		if err := s.db.notifyTicket(tx, f.MailboxID, out); err != nil {
			return err
		}
		if f.Cursor != nil {
			return s.db.saveCursor(tx, *f.Cursor)
		}
		return nil
	})
	return out, err
}

// TicketsChannel is the Postgres NOTIFY channel on which every stored
// message that creates or joins a ticket is announced, so that a ticket
// system can LISTEN instead of polling (docs/schema.md).
const TicketsChannel = "fetcher_tickets"

// TicketEvent is the JSON payload sent on TicketsChannel.
type TicketEvent struct {
	TicketID        int64 `json:"ticket_id"`
	TicketMessageID int64 `json:"ticket_message_id"`
	MailboxID       int64 `json:"mailbox_id"`
	// Event is "created" (the message opened the ticket) or "appended"
	// (it joined an existing one).
	Event string `json:"event"`
}

// notifyTicket announces a message that created or joined a ticket, in the
// transaction that stores it: "if NOTIFY is executed inside a transaction,
// the notify events are not delivered until and unless the transaction is
// committed" (https://www.postgresql.org/docs/current/sql-notify.html), so
// listeners never hear of a row they cannot read yet, nor of one rolled
// back. Duplicates and known messages wrote no ticket row and say nothing.
// The embedded database has no NOTIFY.
func (db *DB) notifyTicket(tx *gorm.DB, mailboxID int64, saved Saved) error {
	if db.dialect != Postgres || (saved.Outcome != Created && saved.Outcome != Appended) {
		return nil
	}
	payload, err := json.Marshal(TicketEvent{
		TicketID: saved.TicketID, TicketMessageID: saved.MessageRowID,
		MailboxID: mailboxID, Event: saved.Outcome.String(),
	})
	if err != nil {
		return err
	}
	// Under a savepoint: a NOTIFY queue that is full (a listener idle in a
	// transaction for days) must cost the listeners their notice, never
	// the message its row.
	if err := tx.SavePoint("fetcher_notify").Error; err != nil {
		return fmt.Errorf("notify %s: %w", TicketsChannel, err)
	}
	if err := tx.Exec("SELECT pg_notify(?, ?)", TicketsChannel, string(payload)).Error; err != nil {
		if rerr := tx.RollbackTo("fetcher_notify").Error; rerr != nil {
			return fmt.Errorf("notify %s: %w", TicketsChannel, errors.Join(err, rerr))
		}
	}
	return nil
}

// saveConflict handles a source key already in ticket_messages although
// the ledger lacked it when the transaction began. Either another worker
// stored this message meanwhile (its ledger row is there now: Known), or
// the server reused the key of a message that is gone and forgotten, such
// as a POP3 UIDL: that is a different message, stored under the key with
// a digest of its bytes appended, so it is neither lost nor mistaken for
// the old one (whose after-fetch action would then hit the new message).
func (s *Tickets) saveConflict(ctx context.Context, f Fetched) (Saved, error) {
	known, err := ledgerHas(s.db.gorm.WithContext(ctx), f.MailboxID, f.SourceKey)
	if err != nil || known {
		return Saved{Outcome: Known}, err
	}
	sum := sha256.Sum256(f.Raw)
	f.storedKey = f.SourceKey + "#" + hex.EncodeToString(sum[:8])
	out, err := s.saveTx(ctx, f)
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return Saved{Outcome: Known}, nil // these very bytes are stored already
	}
	return out, err
}

func (s *Tickets) save(tx *gorm.DB, f Fetched) (Saved, error) {
	if known, err := ledgerHas(tx, f.MailboxID, f.SourceKey); err != nil || known {
		return Saved{Outcome: Known}, err
	}
	if dup, err := findDuplicate(tx, f); err != nil {
		return Saved{}, err
	} else if dup != nil {
		saved := Saved{Outcome: Duplicate, TicketID: dup.TicketID, MessageRowID: dup.ID}
		return saved, s.writeLedger(tx, f, saved)
	}
	saved, err := s.attach(tx, f)
	if err != nil {
		return Saved{}, err
	}
	if saved.MessageRowID, err = s.insertMessage(tx, f, saved.TicketID); err != nil {
		return Saved{}, err
	}
	if saved.Notifications, err = s.queue(tx, f, saved); err != nil {
		return Saved{}, err
	}
	return saved, s.writeLedger(tx, f, saved)
}

// attach finds the ticket a message belongs to, creating one when it
// replies to nothing stored.
func (s *Tickets) attach(tx *gorm.DB, f Fetched) (Saved, error) {
	now := s.db.now()
	ticketID, err := parentTicket(tx, f)
	if err != nil {
		return Saved{}, err
	}
	if ticketID != 0 {
		return Saved{Outcome: Appended, TicketID: ticketID}, touchTicket(tx, ticketID, now)
	}
	if f.Parsed.IsAutoReply && !f.AutoReplyTickets {
		id, err := s.collectingTicket(tx, f.MailboxID, now)
		return Saved{Outcome: Appended, TicketID: id}, err
	}
	t, err := s.newTicket(tx, f, now)
	if err != nil {
		return Saved{}, err
	}
	return Saved{Outcome: Created, TicketID: t.ID}, nil
}

// collectingSubject is the subject of a mailbox's collecting ticket.
const collectingSubject = "Automatic replies and bounces that match no ticket"

// collectingTicket returns the mailbox's ticket for auto-replies and
// bounces that match no ticket, creating it on first use. An out-of-office
// notice or a bounce of spam backscatter is kept (nothing fetched is
// dropped) but opens no ticket of its own, so staff are not paged for it.
// ON CONFLICT DO NOTHING with the partial unique index makes two workers
// racing to create it end with one.
func (s *Tickets) collectingTicket(tx *gorm.DB, mailboxID int64, now time.Time) (int64, error) {
	typeID, err := ticketTypeOf(tx, mailboxID)
	if err != nil {
		return 0, err
	}
	t := &Ticket{
		TicketTypeID: typeID, MailboxID: &mailboxID, Subject: collectingSubject,
		Status: "new", Kind: KindAutoReplies, CreatedAt: now, UpdatedAt: now, LastMessageAt: now,
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(t).Error; err != nil {
		return 0, fmt.Errorf("create auto-reply ticket: %w", err)
	}
	if t.ID != 0 {
		return t.ID, nil
	}
	err = tx.Model(&Ticket{}).Where("mailbox_id = ? AND kind = ?", mailboxID, KindAutoReplies).
		Pluck("id", &t.ID).Error
	if err == nil && t.ID == 0 {
		err = errors.New("not found after a conflict")
	}
	if err != nil {
		return 0, fmt.Errorf("find auto-reply ticket: %w", err)
	}
	return t.ID, touchTicket(tx, t.ID, now)
}

// touchTicket records that a message joined the ticket.
func touchTicket(tx *gorm.DB, id int64, now time.Time) error {
	err := tx.Model(&Ticket{}).Where("id = ?", id).
		Updates(map[string]any{"last_message_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("update ticket %d: %w", id, err)
	}
	return nil
}

// parentTicket finds the ticket a message replies to: by In-Reply-To and
// References (and the ids of the message a bounce returns) first, among
// the stored messages and then among the notifications sent, else by
// a "[#123]" tag in the subject (or the returned message's) naming a
// ticket of the same mailbox (mailers that drop the reference headers
// still keep the subject), else the ticket of the header-only row stored
// for this very message when it was over the size limit. 0 means none.
//
// Mail that is not an auto-reply never joins the collecting ticket: a
// person answering a vendor's automatic acknowledgement (collected there)
// starts a real conversation, which must not be hidden.
func parentTicket(tx *gorm.DB, f Fetched) (int64, error) {
	mailOnly := !f.Parsed.IsAutoReply
	ids := f.Parsed.ReferencedIDs()
	if id, err := findReferenced(tx, f.MailboxID, ids, mailOnly); err != nil || id != 0 {
		return id, err
	}
	if id, err := findNotified(tx, f.MailboxID, ids); err != nil || id != 0 {
		return id, err
	}
	if id, err := taggedTicket(tx, f, mailOnly); err != nil || id != 0 {
		return id, err
	}
	return truncatedTwin(tx, f)
}

// taggedTicket returns the ticket named by the message's "[#123]" tag when
// it is a ticket of the same mailbox (not another mailbox's, nor a number
// in a customer's own subject), or 0.
func taggedTicket(tx *gorm.DB, f Fetched, mailOnly bool) (int64, error) {
	id, ok := f.Parsed.TicketTag()
	if !ok {
		return 0, nil
	}
	q := tx.Model(&Ticket{}).Where("id = ? AND mailbox_id = ?", id, f.MailboxID)
	if mailOnly {
		q = q.Where("kind <> ?", KindAutoReplies)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("find tagged ticket %d: %w", id, err)
	}
	if n == 0 {
		return 0, nil
	}
	return id, nil
}

// truncatedTwin returns the ticket of a header-only row (over the size
// limit) with the same Message-ID, so that the message fetched whole later
// joins the ticket staff already know instead of opening a second one.
func truncatedTwin(tx *gorm.DB, f Fetched) (int64, error) {
	if f.Size != 0 || f.Parsed.MessageID == "" {
		return 0, nil
	}
	var ids []int64
	err := tx.Model(&TicketMessage{}).
		Where("mailbox_id = ? AND message_id = ? AND raw_truncated", f.MailboxID, f.Parsed.MessageID).
		Order("id DESC").Limit(1).Pluck("ticket_id", &ids).Error
	if err != nil {
		return 0, fmt.Errorf("find header-only row: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}

func (s *Tickets) newTicket(tx *gorm.DB, f Fetched, now time.Time) (*Ticket, error) {
	typeID, err := ticketTypeOf(tx, f.MailboxID)
	if err != nil {
		return nil, err
	}
	subject := ticket.ThreadSubject(f.Parsed.Subject)
	if subject == "" {
		subject = "(no subject)"
	}
	mailboxID := f.MailboxID
	t := &Ticket{
		TicketTypeID: typeID, MailboxID: &mailboxID, Subject: subject,
		RequesterEmail: opt(f.Parsed.FromEmail), RequesterName: opt(f.Parsed.FromName),
		Status: "new", Kind: KindMail, CreatedAt: now, UpdatedAt: now, LastMessageAt: now,
	}
	if err := tx.Create(t).Error; err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	return t, nil
}

func (s *Tickets) insertMessage(tx *gorm.DB, f Fetched, ticketID int64) (int64, error) {
	p := f.Parsed
	row := &TicketMessage{
		TicketID: ticketID, MailboxID: f.MailboxID, SourceKey: f.rowKey(),
		MessageID: opt(p.MessageID), InReplyTo: opt(p.InReplyTo), ReferencesHeader: opt(p.References),
		FromEmail: opt(p.FromEmail), FromName: opt(p.FromName), ToAddrs: opt(p.To), CcAddrs: opt(p.Cc),
		Subject: opt(p.Subject), SentAt: timePtr(p.SentAt), ReceivedAt: s.db.now(),
		BodyText: opt(p.BodyText), BodyHTML: opt(p.BodyHTML), BodyHTMLSafe: opt(p.BodyHTMLSafe),
		Raw: f.Raw, RawTruncated: f.Size != 0, SizeBytes: f.size(),
		IsAutoReply: p.IsAutoReply, ParseError: opt(p.ParseError),
	}
	if err := tx.Create(row).Error; err != nil {
		return 0, fmt.Errorf("insert ticket message: %w", err)
	}
	for _, a := range p.Attachments {
		att := &TicketAttachment{
			TicketMessageID: row.ID, Filename: a.Filename, ContentType: a.ContentType,
			ContentID: opt(a.ContentID), Inline: a.Inline, SizeBytes: int64(len(a.Data)),
			SHA256: a.SHA256, Data: a.Data,
		}
		if err := tx.Create(att).Error; err != nil {
			return 0, fmt.Errorf("insert attachment %q: %w", a.Filename, err)
		}
	}
	return row.ID, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func ticketTypeOf(tx *gorm.DB, mailboxID int64) (*int64, error) {
	var tt TicketType
	err := tx.Where("mailbox_id = ?", mailboxID).Order("id").Take(&tt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find ticket type of mailbox %d: %w", mailboxID, err)
	}
	return &tt.ID, nil
}

// findDuplicate finds a stored message that is the same message as p: the
// same Message-ID and the same sender, subject, date and text. The
// Message-ID alone is not enough: scripts, alarm panels and scanners reuse
// one Message-ID for different messages, and treating those as duplicates
// would drop (and with after_fetch=delete, destroy) real mail.
//
// A header-only row (over the size limit) is never a duplicate: two such
// messages without a header (a POP3 server without TOP) look identical.
func findDuplicate(tx *gorm.DB, f Fetched) (*TicketMessage, error) {
	p, mailboxID := f.Parsed, f.MailboxID
	if p.MessageID == "" || f.Size != 0 {
		return nil, nil
	}
	var rows []TicketMessage
	err := tx.Select("id", "ticket_id", "from_email", "subject", "sent_at", "body_text").
		Where("mailbox_id = ? AND message_id = ?", mailboxID, p.MessageID).
		Order("id").Limit(20).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find message by id: %w", err)
	}
	for i := range rows {
		if sameContent(&rows[i], p) {
			return &rows[i], nil
		}
	}
	return nil, nil
}

func sameContent(row *TicketMessage, p *ticket.Message) bool {
	sent := timePtr(p.SentAt)
	sameDate := (row.SentAt == nil) == (sent == nil) && (sent == nil || row.SentAt.Equal(*sent))
	return deref(row.FromEmail) == p.FromEmail && deref(row.Subject) == p.Subject &&
		deref(row.BodyText) == p.BodyText && sameDate
}

// findReferenced returns the ticket of the most recently stored message
// among ids, or 0. With mailOnly, messages in the collecting ticket do not
// count.
func findReferenced(tx *gorm.DB, mailboxID int64, ids []string, mailOnly bool) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	q := tx.Table("ticket_messages AS m").Select("m.ticket_id").
		Where("m.mailbox_id = ? AND m.message_id IN ?", mailboxID, ids)
	if mailOnly {
		q = q.Joins("JOIN tickets AS t ON t.id = m.ticket_id").Where("t.kind <> ?", KindAutoReplies)
	}
	var found []int64
	if err := q.Order("m.id DESC").Limit(1).Pluck("m.ticket_id", &found).Error; err != nil {
		return 0, fmt.Errorf("find message by id: %w", err)
	}
	if len(found) == 0 {
		return 0, nil
	}
	return found[0], nil
}
