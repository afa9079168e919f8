package store

import (
	"context"
	"fmt"
	"strings"
)

// Read queries for the operator's commands (fetcher status, fetcher
// mailbox …): they read no secret, and change nothing but a mailbox's
// enabled flag.

// SecretsSet says which secret columns of a mailbox hold a value.
type SecretsSet map[string]bool

// SecretColumns are the names of the secret columns, in schema order.
func SecretColumns() []string {
	names := make([]string, len(secretColumns))
	for i, c := range secretColumns {
		names[i] = c.name
	}
	return names
}

// SecretsSet reports, for every mailbox, which secret columns hold a value.
// The values themselves never leave the database: the query returns only
// whether each column is empty, so it works without the key, and with
// values that cannot be decrypted.
func (s *Mailboxes) SecretsSet(ctx context.Context) (map[int64]SecretsSet, error) {
	cols := make([]string, len(secretColumns))
	for i, c := range secretColumns {
		cols[i] = fmt.Sprintf("CASE WHEN COALESCE(%s, '') <> '' THEN 1 ELSE 0 END", c.name)
	}
	rows, err := s.db.gorm.WithContext(ctx).Raw("SELECT id, " + strings.Join(cols, ", ") + " FROM mailboxes").Rows()
	if err != nil {
		return nil, fmt.Errorf("read which secrets are set: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[int64]SecretsSet{}
	for rows.Next() {
		var id int64
		flags := make([]int, len(secretColumns))
		dest := []any{&id}
		for i := range flags {
			dest = append(dest, &flags[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read which secrets are set: %w", err)
		}
		set := SecretsSet{}
		for i, c := range secretColumns {
			set[c.name] = flags[i] == 1
		}
		out[id] = set
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read which secrets are set: %w", err)
	}
	return out, nil
}

// SetEnabled turns a mailbox on or off and reports whether that changed
// anything. Its status, error and backoff stay as they are.
func (s *Mailboxes) SetEnabled(ctx context.Context, id int64, enabled bool) (bool, error) {
	res := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).
		Where("id = ? AND enabled <> ?", id, enabled).
		Updates(map[string]any{"enabled": enabled, "updated_at": s.db.now()})
	if res.Error != nil {
		return false, fmt.Errorf("update mailbox %d: %w", id, res.Error)
	}
	return res.RowsAffected > 0, nil
}

// PendingByMailbox counts the pending notifications of every mailbox that
// has any.
func (o *Outbox) PendingByMailbox(ctx context.Context) (map[int64]int64, error) {
	var rows []struct {
		MailboxID int64
		N         int64
	}
	err := o.db.gorm.WithContext(ctx).Model(&OutboxMessage{}).Select("mailbox_id, count(*) AS n").
		Where("status = ?", OutboxPending).Group("mailbox_id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count pending notifications: %w", err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.MailboxID] = r.N
	}
	return out, nil
}

// CountsByStatus counts a mailbox's notifications by outbox status.
func (o *Outbox) CountsByStatus(ctx context.Context, mailboxID int64) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := o.db.gorm.WithContext(ctx).Model(&OutboxMessage{}).Select("status, count(*) AS n").
		Where("mailbox_id = ?", mailboxID).Group("status").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count notifications of mailbox %d: %w", mailboxID, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
