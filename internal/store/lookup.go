package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// lookups answers the questions storing a message asks of the stored
// ones (is its key in the ledger, is it a duplicate, which ticket does it
// reply to) for a whole batch with a few queries made up front, instead
// of several round trips per message. Rows the batch itself writes are
// added as they are written, so a reply or a duplicate later in the same
// batch finds them just as a later transaction would.
type lookups struct {
	tx *gorm.DB
	// ledger holds the batch's source keys already in fetched_messages,
	// by mailbox.
	ledger map[int64]map[string]bool
	// rows holds, by mailbox and Message-ID, the stored messages that can
	// answer a question: see candidateRows.
	rows map[int64]map[string][]candidate
	// notified holds, by mailbox and Message-ID, the latest notification
	// sent with that Message-ID.
	notified map[int64]map[string]notification
	// ticketTypes caches each mailbox's ticket type (nil: none).
	ticketTypes map[int64]*int64
	// pending holds the batch's ledger entries until its end, when they
	// go in one statement (see flush) instead of one round trip each.
	pending []*fetchedMessage
	// copier, when set, holds the batch's message rows for COPY; nil
	// inserts each at once.
	copier *rowCopier
}

// candidate is a stored message, as much of it as the questions need.
type candidate struct {
	ID        int64
	TicketID  int64
	MessageID string
	Kind      string
	FromEmail *string
	Subject   *string
	SentAt    *time.Time
	BodyText  *string
	Truncated bool `gorm:"column:raw_truncated"`
	// First marks one of the first dupCandidates rows with its Message-ID
	// (by id), the only ones findDuplicate compares.
	First bool
}

// notification is an outbox row a reply can refer to.
type notification struct {
	ID       int64
	TicketID int64
}

// dupCandidates bounds how many stored messages with a Message-ID are
// compared with a new one: scripts and alarm panels can reuse one id for
// thousands of messages.
const dupCandidates = 20

// idChunk bounds the ids of one query: Postgres takes at most 65535
// parameters.
const idChunk = 1000

// prefetch reads what saving fs will ask.
func prefetch(tx *gorm.DB, c *rowCopier, fs []Fetched) (*lookups, error) {
	l := &lookups{
		tx: tx, copier: c, ledger: map[int64]map[string]bool{}, rows: map[int64]map[string][]candidate{},
		notified: map[int64]map[string]notification{}, ticketTypes: map[int64]*int64{},
	}
	keys, ids, refs := map[int64][]string{}, map[int64][]string{}, map[int64][]string{}
	for _, f := range fs {
		keys[f.MailboxID] = append(keys[f.MailboxID], f.SourceKey)
		if f.Parsed.MessageID != "" {
			ids[f.MailboxID] = append(ids[f.MailboxID], f.Parsed.MessageID)
		}
		refs[f.MailboxID] = append(refs[f.MailboxID], f.Parsed.ReferencedIDs()...)
	}
	for mb := range keys {
		if err := l.load(mb, keys[mb], ids[mb], refs[mb]); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// insertMessage writes a message row and its attachments, or queues them
// for the batch's COPY. (Multi-row INSERTs were measured too: 8% faster
// than an INSERT each, but half again the peak memory, the rows' bytes
// being copied into one statement; COPY streams them.)
func (l *lookups) insertMessage(row *TicketMessage, atts []*TicketAttachment) error {
	if l.copier != nil {
		return l.copier.add(row, atts)
	}
	return insertRows(l.tx, row, atts)
}

// createTicket inserts a new ticket, or queues it for the batch's flush
// under a placeholder id.
func (l *lookups) createTicket(t *Ticket) error {
	if l.copier != nil {
		l.copier.addTicket(t)
		return nil
	}
	if err := l.tx.Create(t).Error; err != nil {
		return fmt.Errorf("create ticket: %w", err)
	}
	return nil
}

// touch records that a message joined the ticket, at once or at the
// batch's flush.
func (l *lookups) touch(id int64, now time.Time) error {
	if l.copier != nil {
		l.copier.touch(id)
		return nil
	}
	return touchTicket(l.tx, id, now)
}

// writeLedger queues a ledger entry for flush.
func (l *lookups) writeLedger(row *fetchedMessage) { l.pending = append(l.pending, row) }

// ledgerRowsPerInsert bounds the rows of one INSERT: Postgres takes at
// most 65535 parameters.
const ledgerRowsPerInsert = 1000

// flush writes the queued message rows, then the ledger entries, which
// refer to them.
func (l *lookups) flush() error {
	if err := l.copier.flush(l.tx); err != nil {
		return err
	}
	rows := l.pending
	l.pending = nil
	if len(rows) == 0 {
		return nil
	}
	if err := l.tx.CreateInBatches(rows, ledgerRowsPerInsert).Error; err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

func (l *lookups) load(mailboxID int64, keys, ids, refs []string) error {
	l.ledger[mailboxID] = map[string]bool{}
	l.rows[mailboxID] = map[string][]candidate{}
	l.notified[mailboxID] = map[string]notification{}
	for part := range slices.Chunk(keys, idChunk) {
		var found []string
		err := l.tx.Model(&fetchedMessage{}).Where("mailbox_id = ? AND source_key IN ?", mailboxID, part).
			Pluck("source_key", &found).Error
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		for _, k := range found {
			l.ledger[mailboxID][k] = true
		}
	}
	own := dedupe(slices.Clone(ids))
	all := dedupe(append(slices.Clone(ids), refs...))
	for part := range slices.Chunk(all, idChunk) {
		if err := l.loadRows(mailboxID, part, own); err != nil {
			return err
		}
	}
	for part := range slices.Chunk(dedupe(refs), idChunk) {
		if err := l.loadNotified(mailboxID, part); err != nil {
			return err
		}
	}
	return nil
}

// loadRows reads, for each of ids, the stored messages that can answer a
// question about it: the first dupCandidates (findDuplicate compares only
// those, and only for own, the batch's own Message-IDs, with their text),
// the latest header-only one (truncatedTwin), and the latest in a mail
// ticket and in a collecting ticket (findReferenced). A reply's long
// References chain costs a row per id, never the quoted bodies.
func (l *lookups) loadRows(mailboxID int64, ids, own []string) error {
	if len(own) == 0 {
		own = []string{""} // IN () is not SQL; "" is no Message-ID
	}
	var rows []candidate
	err := l.tx.Raw(`
		SELECT id, ticket_id, message_id, kind, from_email, subject, sent_at, raw_truncated,
		       CASE WHEN first_n <= ? AND message_id IN ? THEN body_text END AS body_text,
		       first_n <= ? AS first
		  FROM (SELECT m.id, m.ticket_id, m.message_id, t.kind, m.from_email, m.subject, m.sent_at,
		               m.raw_truncated, m.body_text,
		               row_number() OVER (PARTITION BY m.message_id ORDER BY m.id) AS first_n,
		               row_number() OVER (PARTITION BY m.message_id, m.raw_truncated ORDER BY m.id DESC) AS last_trunc,
		               row_number() OVER (PARTITION BY m.message_id, t.kind ORDER BY m.id DESC) AS last_kind
		          FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
		         WHERE m.mailbox_id = ? AND m.message_id IN ?) c
		 WHERE first_n <= ? OR (raw_truncated AND last_trunc = 1) OR last_kind = 1
		 ORDER BY id`, dupCandidates, own, dupCandidates, mailboxID, ids, dupCandidates).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("find messages by id: %w", err)
	}
	for _, r := range rows {
		l.rows[mailboxID][r.MessageID] = append(l.rows[mailboxID][r.MessageID], r)
	}
	return nil
}

// loadNotified reads the ticket of the latest notification sent with each
// of ids.
func (l *lookups) loadNotified(mailboxID int64, ids []string) error {
	var rows []struct {
		ID        int64
		MessageID string
		TicketID  int64
	}
	err := l.tx.Model(&OutboxMessage{}).Select("id", "message_id", "ticket_id").
		Where("mailbox_id = ? AND message_id IN ? AND ticket_id IS NOT NULL", mailboxID, ids).
		Order("id").Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("find notification by id: %w", err)
	}
	for _, r := range rows {
		l.notified[mailboxID][r.MessageID] = notification{ID: r.ID, TicketID: r.TicketID} // by id: the latest stays
	}
	return nil
}

// known reports whether f's source key is in the ledger.
func (l *lookups) known(f Fetched) bool { return l.ledger[f.MailboxID][f.SourceKey] }

// stored records what the batch wrote for f: its ledger entry and, when it
// wrote a message row, that row.
func (l *lookups) stored(f Fetched, saved Saved, kind string) {
	l.ledger[f.MailboxID][f.SourceKey] = true
	p := f.Parsed
	if saved.Outcome == Duplicate || p.MessageID == "" {
		return
	}
	rows := l.rows[f.MailboxID][p.MessageID]
	first := 0
	for _, r := range rows {
		if r.First {
			first++
		}
	}
	l.rows[f.MailboxID][p.MessageID] = append(rows, candidate{
		ID: saved.MessageRowID, TicketID: saved.TicketID, MessageID: p.MessageID, Kind: kind,
		FromEmail: opt(p.FromEmail), Subject: opt(p.Subject), SentAt: timePtr(p.SentAt), BodyText: opt(p.BodyText),
		Truncated: f.Size != 0, First: first < dupCandidates,
	})
}

// findDuplicate finds a stored message that is the same message as f's:
// the same Message-ID and the same sender, subject, date and text. The
// Message-ID alone is not enough: scripts, alarm panels and scanners reuse
// one Message-ID for different messages, and treating those as duplicates
// would drop (and with after_fetch=delete, destroy) real mail.
//
// A header-only row (over the size limit) is never a duplicate: two such
// messages without a header (a POP3 server without TOP) look identical.
func (l *lookups) findDuplicate(f Fetched) *candidate {
	p := f.Parsed
	if p.MessageID == "" || f.Size != 0 {
		return nil
	}
	rows := l.rows[f.MailboxID][p.MessageID]
	for i := range rows {
		if rows[i].First && sameContent(rows[i], p) {
			return &rows[i]
		}
	}
	return nil
}

// findReferenced returns the ticket and its kind of the most recently
// stored message among ids, or 0. With mailOnly, messages in the
// collecting ticket do not count.
func (l *lookups) findReferenced(mailboxID int64, ids []string, mailOnly bool) (int64, string) {
	var best *candidate
	for _, id := range ids {
		rows := l.rows[mailboxID][id]
		for i := range rows {
			r := &rows[i]
			if mailOnly && r.Kind == KindAutoReplies {
				continue
			}
			if best == nil || r.ID > best.ID {
				best = r
			}
		}
	}
	if best == nil {
		return 0, ""
	}
	return best.TicketID, best.Kind
}

// findNotified returns the ticket of the most recent notification among
// ids, or 0: a reply to an acknowledgement whose mailer kept only our
// Message-ID (In-Reply-To without the requester's References) still finds
// its ticket.
func (l *lookups) findNotified(mailboxID int64, ids []string) int64 {
	var found notification
	for _, id := range ids {
		if n, ok := l.notified[mailboxID][id]; ok && n.ID > found.ID {
			found = n
		}
	}
	return found.TicketID
}

// truncatedTwin returns the ticket and its kind of the latest header-only
// row (over the size limit) with f's Message-ID, so that the message
// fetched whole later joins the ticket staff already know instead of
// opening a second one.
func (l *lookups) truncatedTwin(f Fetched) (int64, string) {
	if f.Size != 0 || f.Parsed.MessageID == "" {
		return 0, ""
	}
	var best *candidate
	rows := l.rows[f.MailboxID][f.Parsed.MessageID]
	for i := range rows {
		if rows[i].Truncated && (best == nil || rows[i].ID > best.ID) {
			best = &rows[i]
		}
	}
	if best == nil {
		return 0, ""
	}
	return best.TicketID, best.Kind
}

// ticketType returns the mailbox's ticket type, nil when it has none.
func (l *lookups) ticketType(mailboxID int64) (*int64, error) {
	if id, ok := l.ticketTypes[mailboxID]; ok {
		return id, nil
	}
	var tt TicketType
	err := l.tx.Where("mailbox_id = ?", mailboxID).Order("id").Take(&tt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		l.ticketTypes[mailboxID] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find ticket type of mailbox %d: %w", mailboxID, err)
	}
	l.ticketTypes[mailboxID] = &tt.ID
	return &tt.ID, nil
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
