package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// rowCopier writes a batch's message and attachment rows on Postgres with
// COPY FROM STDIN (https://www.postgresql.org/docs/current/sql-copy.html)
// instead of an INSERT each. An INSERT per row made the writer wait for a
// round trip per message, and Postgres parse, plan and run a statement per
// row: that one connection was the pipeline's narrowest point. The rows
// are held (they point at bytes the batch holds anyway) and go in one COPY
// per table when the batch ends, or earlier when a row must exist before
// the batch's next statement (an outbox row refers to its message).
//
// Message ids are taken from the table's own sequence up front, so that
// replies, ledger entries and notifications can name a row before it is
// written. Ids a batch does not use are left as gaps, as a rolled-back
// INSERT leaves them; ticket numbers (tickets.id) are not taken this way.
//
// New tickets wait too, under a placeholder id (negative, so never a
// row's), and go in one multi-row INSERT before the messages that name
// them; replies' touches of their tickets go in one UPDATE. Ticket ids
// are not reserved up front: those are the numbers staff and customers
// see, and a batch does not know how many tickets it opens.
type rowCopier struct {
	conn *sql.Conn
	now  func() time.Time
	ids  []int64
	msgs []*TicketMessage
	atts []*TicketAttachment

	tickets []*Ticket
	// placeholder is the last placeholder id handed out.
	placeholder int64
	// resolved maps the placeholders of inserted tickets to their ids.
	resolved map[int64]int64
	// touched holds the tickets messages joined, in order, once each.
	touched []int64
}

// batchTx runs fn in a transaction. On Postgres, a batch of more than one
// message gets a rowCopier on the transaction's own connection (COPY is not
// reachable through database/sql, only through the pgx connection below
// it); otherwise copier is nil and rows are inserted one at a time.
func (db *DB) batchTx(ctx context.Context, n int, fn func(tx *gorm.DB, c *rowCopier) error) error {
	if db.dialect != Postgres || n < 2 || !db.copyOK(ctx) {
		return db.tx(ctx, func(tx *gorm.DB) error { return fn(tx, nil) })
	}
	return db.gorm.WithContext(ctx).Connection(func(pinned *gorm.DB) error {
		conn, ok := pinned.Statement.ConnPool.(*sql.Conn)
		if !ok {
			return fmt.Errorf("batch transaction: connection is %T, not *sql.Conn", pinned.Statement.ConnPool)
		}
		return pinned.Transaction(func(tx *gorm.DB) error {
			c := &rowCopier{conn: conn, now: db.now}
			if err := c.reserve(tx, n); err != nil {
				return err
			}
			return fn(tx, c)
		})
	})
}

// copyOK reports whether the database role may take ids from the
// sequence of ticket_messages.id: nextval needs USAGE or UPDATE on it,
// which INSERTs into the identity column do not, so a role granted only
// the tables' privileges stores batches the slower way rather than not at
// all (docs/configuration.md, "Databases"). The answer is kept; a failed check is not.
func (db *DB) copyOK(ctx context.Context) bool {
	if v := db.copyAllowed.Load(); v != 0 {
		return v > 0
	}
	var ok bool
	err := db.gorm.WithContext(ctx).
		Raw("SELECT has_sequence_privilege(pg_get_serial_sequence('ticket_messages', 'id'), 'USAGE, UPDATE')").
		Scan(&ok).Error
	if err != nil {
		return false
	}
	if ok {
		db.copyAllowed.Store(1)
	} else {
		db.copyAllowed.Store(-1)
	}
	return ok
}

// reserve takes n ticket_messages ids from the table's sequence, in the
// order the sequence hands them out, so that rows keep the order they are
// stored in.
func (c *rowCopier) reserve(tx *gorm.DB, n int) error {
	var ids []int64
	err := tx.Raw("SELECT nextval(pg_get_serial_sequence('ticket_messages', 'id')) FROM generate_series(1, ?)", n).
		Scan(&ids).Error
	if err != nil {
		return fmt.Errorf("reserve message ids: %w", err)
	}
	slices.Sort(ids)
	c.ids = ids
	return nil
}

// add queues a message row and its attachments, giving the row its id.
func (c *rowCopier) add(row *TicketMessage, atts []*TicketAttachment) error {
	if len(c.ids) == 0 {
		return fmt.Errorf("insert ticket message: no reserved id left")
	}
	row.ID, c.ids = c.ids[0], c.ids[1:]
	for _, a := range atts {
		a.TicketMessageID = row.ID
	}
	c.msgs = append(c.msgs, row)
	c.atts = append(c.atts, atts...)
	return nil
}

// addTicket queues a new ticket, giving it a placeholder id.
func (c *rowCopier) addTicket(t *Ticket) {
	c.placeholder--
	t.ID = c.placeholder
	c.tickets = append(c.tickets, t)
}

// touch queues the update of a ticket a message joined.
func (c *rowCopier) touch(id int64) {
	if !slices.Contains(c.touched, id) {
		c.touched = append(c.touched, id)
	}
}

// ticketID is the id of a ticket: itself, or the id a placeholder's
// ticket got when it was inserted.
func (c *rowCopier) ticketID(id int64) int64 {
	if c == nil || id >= 0 {
		return id
	}
	if real, ok := c.resolved[id]; ok {
		return real
	}
	return id
}

// flush writes the queued rows: tickets, then the messages that name them,
// then the attachments that name those, then the tickets' touches.
func (c *rowCopier) flush(tx *gorm.DB) error {
	if c == nil {
		return nil
	}
	if err := c.flushTickets(tx); err != nil {
		return err
	}
	if err := c.flushMessages(tx); err != nil {
		return err
	}
	return c.flushTouches(tx)
}

func (c *rowCopier) flushTickets(tx *gorm.DB) error {
	if c == nil || len(c.tickets) == 0 {
		return nil
	}
	ts := c.tickets
	c.tickets = nil
	placeholders := make([]int64, len(ts))
	for i, t := range ts {
		placeholders[i], t.ID = t.ID, 0
	}
	// One INSERT ... RETURNING id: Postgres returns the ids in the order
	// of the rows, which GORM writes back into ts.
	if err := tx.Create(ts).Error; err != nil {
		return fmt.Errorf("create %d tickets: %w", len(ts), err)
	}
	if c.resolved == nil {
		c.resolved = map[int64]int64{}
	}
	for i, t := range ts {
		c.resolved[placeholders[i]] = t.ID
	}
	return nil
}

func (c *rowCopier) flushTouches(tx *gorm.DB) error {
	if len(c.touched) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(c.touched))
	for _, id := range c.touched {
		ids = append(ids, c.ticketID(id))
	}
	c.touched = nil
	now := c.now()
	err := tx.Model(&Ticket{}).Where("id IN ?", ids).
		Updates(map[string]any{"last_message_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("update %d tickets: %w", len(ids), err)
	}
	return nil
}

func (c *rowCopier) flushMessages(tx *gorm.DB) error {
	if len(c.msgs) == 0 {
		return nil
	}
	msgs, atts := c.msgs, c.atts
	c.msgs, c.atts = nil, nil
	for _, m := range msgs {
		m.TicketID = c.ticketID(m.TicketID)
	}
	if len(msgs) == 1 {
		// A message flushed alone (one that queues notifications): an
		// INSERT is one round trip, a COPY two.
		return insertRows(tx, msgs[0], atts)
	}
	if err := c.copy(tx, "ticket_messages", messageColumns, len(msgs), func(i int) []any { return messageValues(msgs[i]) }); err != nil {
		return fmt.Errorf("insert %d ticket messages: %w", len(msgs), err)
	}
	if err := c.copy(tx, "ticket_attachments", attachmentColumns, len(atts), func(i int) []any { return attachmentValues(atts[i]) }); err != nil {
		return fmt.Errorf("insert %d attachments: %w", len(atts), err)
	}
	return nil
}

// copy runs one COPY on the transaction's connection. Its errors are
// translated as GORM's own (a unique violation is gorm.ErrDuplicatedKey),
// so that SaveBatch tells a refused batch from a failed one as before.
func (c *rowCopier) copy(tx *gorm.DB, table string, cols []string, n int, row func(i int) []any) error {
	if n == 0 {
		return nil
	}
	err := c.conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", dc)
		}
		src := pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil })
		_, err := pc.Conn().CopyFrom(tx.Statement.Context, pgx.Identifier{table}, cols, src)
		return err
	})
	if t, ok := tx.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		if translated := t.Translate(err); translated != err {
			return fmt.Errorf("%w: %w", translated, err)
		}
	}
	return err
}

// messageColumns are the columns messageValues fills, in its order: every
// column of ticket_messages that TicketMessage maps.
var messageColumns = []string{
	"id", "ticket_id", "mailbox_id", "source_key", "message_id", "in_reply_to", "references_header",
	"from_email", "from_name", "to_addrs", "cc_addrs", "subject", "sent_at", "received_at",
	"body_text", "body_html", "body_html_safe", "raw", "raw_truncated", "size_bytes", "is_auto_reply", "parse_error",
}

func messageValues(m *TicketMessage) []any {
	return []any{
		m.ID, m.TicketID, m.MailboxID, m.SourceKey, m.MessageID, m.InReplyTo, m.ReferencesHeader,
		m.FromEmail, m.FromName, m.ToAddrs, m.CcAddrs, m.Subject, m.SentAt, m.ReceivedAt,
		m.BodyText, m.BodyHTML, m.BodyHTMLSafe, m.Raw, m.RawTruncated, m.SizeBytes, m.IsAutoReply, m.ParseError,
	}
}

// attachmentColumns are the columns attachmentValues fills; id is the
// table's default.
var attachmentColumns = []string{
	"ticket_message_id", "filename", "content_type", "content_id", "inline", "size_bytes", "sha256", "data",
}

func attachmentValues(a *TicketAttachment) []any {
	return []any{a.TicketMessageID, a.Filename, a.ContentType, a.ContentID, a.Inline, a.SizeBytes, a.SHA256, a.Data}
}

// insertRows inserts a message row (with its id, when set) and its
// attachments, an INSERT each.
func insertRows(tx *gorm.DB, m *TicketMessage, atts []*TicketAttachment) error {
	if err := tx.Create(m).Error; err != nil {
		return fmt.Errorf("insert ticket message: %w", err)
	}
	for _, a := range atts {
		a.TicketMessageID = m.ID
		if err := tx.Create(a).Error; err != nil {
			return fmt.Errorf("insert attachment %q: %w", a.Filename, err)
		}
	}
	return nil
}
