package store

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
		saved, err := s.saveAll(tx, nil, []Fetched{f})
		if err == nil {
			out = saved[0]
		}
		return err
	})
	return out, err
}

// MaxBatch bounds how many messages SaveBatch stores in one transaction.
const MaxBatch = 200

// ErrBatchRefused wraps what made SaveBatch roll a batch back when saving
// its messages one at a time can tell which one is at fault (a conflict,
// a value the database refuses): the caller then saves them one by one.
var ErrBatchRefused = errors.New("batch refused")

// SaveBatch stores fetched messages in one transaction, in order, each as
// Save would: the rows of every message, their ledger entries and
// notifications, and the cursor of the last one. One transaction per batch
// instead of one per message saves a commit (a WAL flush) and a round trip
// for every message. Nothing is stored when it fails; an error wrapping
// ErrBatchRefused means saving them one at a time may succeed.
func (s *Tickets) SaveBatch(ctx context.Context, fs []Fetched) ([]Saved, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	var out []Saved
	err := s.db.batchTx(ctx, len(fs), func(tx *gorm.DB, c *rowCopier) error {
		var err error
		out, err = s.saveAll(tx, c, fs)
		return err
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) || IsDataError(err) {
		return nil, fmt.Errorf("save %d messages: %w: %w", len(fs), ErrBatchRefused, err)
	}
	if err != nil {
		return nil, fmt.Errorf("save %d messages: %w", len(fs), err)
	}
	return out, nil
}

// saveAll saves fs in tx (their message rows through c, when set), then
// announces them and moves the cursor to the last one's.
func (s *Tickets) saveAll(tx *gorm.DB, c *rowCopier, fs []Fetched) ([]Saved, error) {
	l, err := prefetch(tx, c, fs)
	if err != nil {
		return nil, err
	}
	out := make([]Saved, 0, len(fs))
	var cur *Cursor
	for _, f := range fs {
		saved, err := s.save(l, f)
		if err != nil {
			return nil, err
		}
		out = append(out, saved)
		if f.Cursor != nil {
			cur = f.Cursor
		}
	}
	if err := l.flush(); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].TicketID = c.ticketID(out[i].TicketID)
	}
	if err := s.db.notifyTickets(tx, fs, out); err != nil {
		return nil, err
	}
	if cur != nil {
		return out, s.db.saveCursor(tx, *cur)
	}
	return out, nil
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

// notifyTickets announces each message that created or joined a ticket,
// in the transaction that stores it: "if NOTIFY is executed inside a
// transaction, the notify events are not delivered until and unless the
// transaction is committed" (https://www.postgresql.org/docs/current/sql-notify.html),
// so listeners never hear of a row they cannot read yet, nor of one rolled
// back. Duplicates and known messages wrote no ticket row and say nothing.
// One statement announces a whole batch, in order. The embedded database
// has no NOTIFY.
func (db *DB) notifyTickets(tx *gorm.DB, fs []Fetched, saved []Saved) error {
	if db.dialect != Postgres {
		return nil
	}
	var payloads []string
	for i, sv := range saved {
		if sv.Outcome != Created && sv.Outcome != Appended {
			continue
		}
		p, err := json.Marshal(TicketEvent{
			TicketID: sv.TicketID, TicketMessageID: sv.MessageRowID,
			MailboxID: fs[i].MailboxID, Event: sv.Outcome.String(),
		})
		if err != nil {
			return err
		}
		payloads = append(payloads, string(p))
	}
	if len(payloads) == 0 {
		return nil
	}
	// Under a savepoint: a NOTIFY queue that is full (a listener idle in a
	// transaction for days) must cost the listeners their notice, never
	// the message its row.
	if err := tx.SavePoint("fetcher_notify").Error; err != nil {
		return fmt.Errorf("notify %s: %w", TicketsChannel, err)
	}
	err := tx.Exec("SELECT pg_notify(?, p) FROM unnest(?::text[]) WITH ORDINALITY AS n(p, i) ORDER BY i",
		TicketsChannel, pgTextArray(payloads)).Error
	if err != nil {
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

func (s *Tickets) save(l *lookups, f Fetched) (Saved, error) {
	tx := l.tx
	if l.known(f) {
		return Saved{Outcome: Known}, nil
	}
	if dup := l.findDuplicate(f); dup != nil {
		saved := Saved{Outcome: Duplicate, TicketID: dup.TicketID, MessageRowID: dup.ID}
		l.stored(f, saved, "")
		l.writeLedger(s.ledgerRow(f, saved))
		return saved, nil
	}
	saved, kind, err := s.attach(l, f)
	if err != nil {
		return Saved{}, err
	}
	if saved.MessageRowID, err = s.insertMessage(l, f, saved.TicketID); err != nil {
		return Saved{}, err
	}
	if f.Notify != nil {
		// Outbox rows refer to the message row and are written from its
		// ticket's row: both must exist first.
		if err := l.copier.flush(tx); err != nil {
			return Saved{}, err
		}
		saved.TicketID = l.copier.ticketID(saved.TicketID)
	}
	if saved.Notifications, err = s.queue(tx, f, saved); err != nil {
		return Saved{}, err
	}
	l.stored(f, saved, kind)
	l.writeLedger(s.ledgerRow(f, saved))
	return saved, nil
}

// attach finds the ticket a message belongs to, creating one when it
// replies to nothing stored, and returns it with its kind.
func (s *Tickets) attach(l *lookups, f Fetched) (Saved, string, error) {
	now := s.db.now()
	ticketID, kind, err := parentTicket(l, f)
	if err != nil {
		return Saved{}, "", err
	}
	if ticketID != 0 {
		return Saved{Outcome: Appended, TicketID: ticketID}, kind, l.touch(ticketID, now)
	}
	if f.Parsed.IsAutoReply && !f.AutoReplyTickets {
		id, err := s.collectingTicket(l, f.MailboxID, now)
		return Saved{Outcome: Appended, TicketID: id}, KindAutoReplies, err
	}
	t, err := s.newTicket(l, f, now)
	if err != nil {
		return Saved{}, "", err
	}
	return Saved{Outcome: Created, TicketID: t.ID}, t.Kind, nil
}

// collectingSubject is the subject of a mailbox's collecting ticket.
const collectingSubject = "Automatic replies and bounces that match no ticket"

// collectingTicket returns the mailbox's ticket for auto-replies and
// bounces that match no ticket, creating it on first use. An out-of-office
// notice or a bounce of spam backscatter is kept (nothing fetched is
// dropped) but opens no ticket of its own, so staff are not paged for it.
// ON CONFLICT DO NOTHING with the partial unique index makes two workers
// racing to create it end with one.
func (s *Tickets) collectingTicket(l *lookups, mailboxID int64, now time.Time) (int64, error) {
	tx := l.tx
	typeID, err := l.ticketType(mailboxID)
	if err != nil {
		return 0, err
	}
	// Tickets the batch holds go first, so that ticket numbers keep the
	// order of the mail.
	if err := l.copier.flushTickets(tx); err != nil {
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
func parentTicket(l *lookups, f Fetched) (int64, string, error) {
	mailOnly := !f.Parsed.IsAutoReply
	ids := f.Parsed.ReferencedIDs()
	if id, kind := l.findReferenced(f.MailboxID, ids, mailOnly); id != 0 {
		return id, kind, nil
	}
	if id := l.findNotified(f.MailboxID, ids); id != 0 {
		return ticketKind(l.tx, id)
	}
	if id, kind, err := taggedTicket(l.tx, f, mailOnly); err != nil || id != 0 {
		return id, kind, err
	}
	id, kind := l.truncatedTwin(f)
	return id, kind, nil
}

// ticketKind returns the ticket's id and kind.
func ticketKind(tx *gorm.DB, id int64) (int64, string, error) {
	var kinds []string
	if err := tx.Model(&Ticket{}).Where("id = ?", id).Pluck("kind", &kinds).Error; err != nil {
		return 0, "", fmt.Errorf("read ticket %d: %w", id, err)
	}
	if len(kinds) == 0 {
		return id, "", nil
	}
	return id, kinds[0], nil
}

// taggedTicket returns the ticket, and its kind, named by the message's
// "[#123]" tag when it is a ticket of the same mailbox (not another
// mailbox's, nor a number in a customer's own subject), or 0.
func taggedTicket(tx *gorm.DB, f Fetched, mailOnly bool) (int64, string, error) {
	id, ok := f.Parsed.TicketTag()
	if !ok {
		return 0, "", nil
	}
	q := tx.Model(&Ticket{}).Where("id = ? AND mailbox_id = ?", id, f.MailboxID)
	if mailOnly {
		q = q.Where("kind <> ?", KindAutoReplies)
	}
	var kinds []string
	if err := q.Pluck("kind", &kinds).Error; err != nil {
		return 0, "", fmt.Errorf("find tagged ticket %d: %w", id, err)
	}
	if len(kinds) == 0 {
		return 0, "", nil
	}
	return id, kinds[0], nil
}

func (s *Tickets) newTicket(l *lookups, f Fetched, now time.Time) (*Ticket, error) {
	typeID, err := l.ticketType(f.MailboxID)
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
	if err := l.createTicket(t); err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Tickets) insertMessage(l *lookups, f Fetched, ticketID int64) (int64, error) {
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
	atts := make([]*TicketAttachment, 0, len(p.Attachments))
	for _, a := range p.Attachments {
		atts = append(atts, &TicketAttachment{
			Filename: a.Filename, ContentType: a.ContentType,
			ContentID: opt(a.ContentID), Inline: a.Inline, SizeBytes: int64(len(a.Data)),
			SHA256: a.SHA256, Data: a.Data,
		})
	}
	if err := l.insertMessage(row, atts); err != nil {
		return 0, err
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

func sameContent(row candidate, p *ticket.Message) bool {
	sent := timePtr(p.SentAt)
	sameDate := (row.SentAt == nil) == (sent == nil) && (sent == nil || row.SentAt.Equal(*sent))
	return deref(row.FromEmail) == p.FromEmail && deref(row.Subject) == p.Subject &&
		deref(row.BodyText) == p.BodyText && sameDate
}

// pgTextArray is a text[] parameter. GORM expands a plain []string into a
// list of parameters, so the array goes as one value in Postgres's array
// literal form: every element quoted, with '"' and '\' escaped by '\'.
type pgTextArray []string

// Value writes the array literal.
func (a pgTextArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range s {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}
