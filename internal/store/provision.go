package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// MailboxWrite is a mailbox an admin provisions: a new row when Create,
// else the Columns of the row with Mailbox.Name (or ID, for a rename).
// Columns are mailboxes column names; only those are written, so the
// state the fetcher keeps (tokens, status, errors) is never touched, but
// for DropTokens, which clears the cached access tokens.
type MailboxWrite struct {
	Mailbox    Mailbox
	Create     bool
	Columns    []string
	DropTokens bool
	// ForgetCursors deletes the mailbox's IMAP cursors: they hold another
	// server's (or account's) UIDs.
	ForgetCursors bool
}

// TicketTypeWrite is a ticket type an admin provisions, by name: MailboxName
// (when in Columns as "mailbox_id") names the mailbox that feeds it.
type TicketTypeWrite struct {
	TicketType  TicketType
	Create      bool
	Columns     []string
	MailboxName string
}

// MailboxDefaults fills what the schema would default on insert, so a
// provisioned row compares and validates as it will be stored.
func MailboxDefaults(m *Mailbox) { applyMailboxDefaults(m) }

// Provision writes mailboxes and ticket types in one transaction: all of
// them or, on any error, none.
func (db *DB) Provision(ctx context.Context, mbs []MailboxWrite, tts []TicketTypeWrite) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		for i := range mbs {
			if err := db.writeMailbox(tx, &mbs[i]); err != nil {
				return err
			}
		}
		for i := range tts {
			if err := db.writeTicketType(tx, &tts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) writeMailbox(tx *gorm.DB, w *MailboxWrite) error {
	m := &w.Mailbox
	now := db.now()
	m.UpdatedAt = now
	cols, err := columnValues(m, w.Columns)
	if err != nil {
		return err
	}
	if w.Create {
		if err := db.insertMailbox(tx, m, cols); err != nil {
			return err
		}
		cols = secretValues(cols)
	}
	if w.DropTokens {
		cols["access_token"], cols["access_token_expires_at"] = nil, nil
		cols["smtp_access_token"], cols["smtp_access_token_expires_at"] = nil, nil
	}
	if w.ForgetCursors {
		if err := tx.Where("mailbox_id = ?", m.ID).Delete(&Cursor{}).Error; err != nil {
			return fmt.Errorf("reset the cursors of mailbox %q: %w", m.Name, err)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	if err := db.sealColumns(m.ID, cols); err != nil {
		return err
	}
	cols["updated_at"] = now
	if err := tx.Model(&Mailbox{}).Where("id = ?", m.ID).Updates(cols).Error; err != nil {
		return fmt.Errorf("update mailbox %q: %w", m.Name, err)
	}
	return nil
}

// insertMailbox inserts the plain columns of cols that have a value; the
// others take the schema's defaults (NULL for the state columns). Secrets
// are written after, sealed for the new id.
func (db *DB) insertMailbox(tx *gorm.DB, m *Mailbox, cols map[string]any) error {
	m.CreatedAt = m.UpdatedAt
	row := *m
	clearSecrets(&row)
	sel := []string{"created_at", "updated_at"}
	for c, v := range cols {
		if v != nil && !isSecretColumn(c) {
			sel = append(sel, c)
		}
	}
	if err := tx.Select(sel).Create(&row).Error; err != nil {
		return fmt.Errorf("create mailbox %q: %w", m.Name, err)
	}
	m.ID = row.ID
	return nil
}

// secretValues keeps the secret columns of cols that have a value.
func secretValues(cols map[string]any) map[string]any {
	out := map[string]any{}
	for c, v := range cols {
		if v != nil && isSecretColumn(c) {
			out[c] = v
		}
	}
	return out
}

func isSecretColumn(c string) bool {
	for _, s := range secretColumns {
		if s.name == c {
			return true
		}
	}
	return false
}

// columnValues maps the columns to m's values, empty text and zero times
// as NULL.
func columnValues(m *Mailbox, columns []string) (map[string]any, error) {
	fields, err := mailboxColumnFields()
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(m).Elem()
	cols := map[string]any{}
	for _, c := range columns {
		idx, ok := fields[c]
		if !ok {
			return nil, fmt.Errorf("mailboxes has no column %q", c)
		}
		cols[c] = nullZero(v.FieldByIndex(idx).Interface())
	}
	return cols, nil
}

func nullZero(v any) any {
	switch x := v.(type) {
	case string:
		return nullString(x)
	case time.Time:
		return nullTime(x)
	}
	return v
}

// mailboxColumnFields maps each mailboxes column to its Mailbox field, by
// gorm's own naming, so the two cannot drift apart.
func mailboxColumnFields() (map[string][]int, error) {
	s, err := schema.Parse(&Mailbox{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		return nil, fmt.Errorf("read the mailboxes columns: %w", err)
	}
	out := map[string][]int{}
	for _, f := range s.Fields {
		if f.DBName != "" {
			out[f.DBName] = f.StructField.Index
		}
	}
	return out, nil
}

func (db *DB) writeTicketType(tx *gorm.DB, w *TicketTypeWrite) error {
	t := &w.TicketType
	if slices.Contains(w.Columns, "mailbox_id") {
		id, err := mailboxIDByName(tx, w.MailboxName)
		if err != nil {
			return fmt.Errorf("ticket type %q: %w", t.Name, err)
		}
		t.MailboxID = id
	}
	now := db.now()
	t.UpdatedAt = now
	if w.Create {
		// A map, not the struct: gorm leaves out a false notify_new for
		// the column's default (true) even when selected.
		t.CreatedAt = now
		row := ticketTypeValues(t, append(slices.Clone(w.Columns), "created_at", "updated_at"))
		if err := tx.Model(&TicketType{}).Create(row).Error; err != nil {
			return fmt.Errorf("create ticket type %q: %w", t.Name, err)
		}
		return nil
	}
	if len(w.Columns) == 0 {
		return nil
	}
	row := ticketTypeValues(t, append(slices.Clone(w.Columns), "updated_at"))
	if err := tx.Model(&TicketType{}).Where("name = ?", t.Name).Updates(row).Error; err != nil {
		return fmt.Errorf("update ticket type %q: %w", t.Name, err)
	}
	return nil
}

// ticketTypeValues maps the columns to t's values, empty text as NULL.
func ticketTypeValues(t *TicketType, cols []string) map[string]any {
	all := map[string]any{
		"name": t.Name, "task": t.Task, "mailbox_id": t.MailboxID, "admin_email": nullString(t.AdminEmail),
		"notify_new": t.NotifyNew, "notify_replies": t.NotifyReplies, "acknowledge": t.Acknowledge,
		"ack_text": nullString(t.AckText), "created_at": t.CreatedAt, "updated_at": t.UpdatedAt,
	}
	row := map[string]any{}
	for _, c := range cols {
		row[c] = all[c]
	}
	return row
}

func mailboxIDByName(tx *gorm.DB, name string) (*int64, error) {
	if name == "" {
		return nil, nil
	}
	var m Mailbox
	err := tx.Select("id").Where("name = ?", name).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("no mailbox is named %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("find mailbox %q: %w", name, err)
	}
	return &m.ID, nil
}

// TicketTypeByName returns the ticket type with the given name.
func (db *DB) TicketTypeByName(ctx context.Context, name string) (TicketType, error) {
	var t TicketType
	err := db.gorm.WithContext(ctx).Where("name = ?", name).Take(&t).Error
	if err != nil {
		return t, notFound(err, fmt.Sprintf("ticket type %q", name))
	}
	return t, nil
}

// MailboxName returns the name of the mailbox with the given id.
func (db *DB) MailboxName(ctx context.Context, id int64) (string, error) {
	var m Mailbox
	if err := db.gorm.WithContext(ctx).Select("name").Take(&m, id).Error; err != nil {
		return "", notFound(err, fmt.Sprintf("mailbox %d", id))
	}
	return m.Name, nil
}

// Inspect returns the mailbox named name with its secrets opened, for
// planning: it writes nothing (Get seals plain values in place, and a dry
// run must not change a row), and a secret it cannot open is left empty
// rather than failing, so that provisioning can store it again. unreadable
// names that column, or is "".
func (s *Mailboxes) Inspect(ctx context.Context, name string) (m Mailbox, unreadable string, err error) {
	err = s.db.gorm.WithContext(ctx).Where("name = ?", name).Take(&m).Error
	if err != nil {
		return m, "", notFound(err, fmt.Sprintf("mailbox %q", name))
	}
	var se *SecretError
	if _, err := s.db.openSecrets(&m); errors.As(err, &se) {
		return m, se.Column, nil
	} else if err != nil {
		return m, "", err
	}
	return m, "", nil
}
