package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Ledger outcomes (fetched_messages.outcome).
const (
	ledgerStored    = "stored"
	ledgerDuplicate = "duplicate"
)

// fetchedMessage is a row of fetched_messages: every source key the fetcher
// has taken from a mailbox, and whether the after-fetch action is done.
type fetchedMessage struct {
	MailboxID       int64  `gorm:"primaryKey"`
	SourceKey       string `gorm:"primaryKey"`
	TicketMessageID *int64
	Outcome         string
	Action          string
	ActionDoneAt    *time.Time
	FetchedAt       time.Time
}

func (fetchedMessage) TableName() string { return "fetched_messages" }

// PendingAction is an after-fetch action whose message is stored but which
// the server has not confirmed yet.
type PendingAction struct {
	SourceKey string
	Action    string
}

func ledgerHas(tx *gorm.DB, mailboxID int64, key string) (bool, error) {
	var n int64
	err := tx.Model(&fetchedMessage{}).
		Where("mailbox_id = ? AND source_key = ?", mailboxID, key).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return n > 0, nil
}

// ledgerRow is the ledger entry of a saved message.
func (s *Tickets) ledgerRow(f Fetched, saved Saved) *fetchedMessage {
	now := s.db.now()
	row := &fetchedMessage{
		MailboxID: f.MailboxID, SourceKey: f.SourceKey,
		Outcome: ledgerStored, Action: f.Action, FetchedAt: now,
	}
	if saved.Outcome == Duplicate {
		row.Outcome = ledgerDuplicate
	}
	if saved.MessageRowID != 0 {
		id := saved.MessageRowID
		row.TicketMessageID = &id
	}
	if f.Action == "" || f.Action == ActionKeep {
		row.ActionDoneAt = &now
	}
	return row
}

// Known returns which of keys this mailbox has already fetched.
func (s *Tickets) Known(ctx context.Context, mailboxID int64, keys []string) (map[string]bool, error) {
	known := make(map[string]bool, len(keys))
	const batch = 500 // stay far below the bind-parameter limits
	for start := 0; start < len(keys); start += batch {
		end := min(start+batch, len(keys))
		var got []string
		err := s.db.gorm.WithContext(ctx).Model(&fetchedMessage{}).
			Where("mailbox_id = ? AND source_key IN ?", mailboxID, keys[start:end]).
			Pluck("source_key", &got).Error
		if err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		for _, k := range got {
			known[k] = true
		}
	}
	return known, nil
}

// Pending returns the after-fetch actions owed for a mailbox's stored
// messages whose source key starts with prefix, oldest first.
func (s *Tickets) Pending(ctx context.Context, mailboxID int64, prefix string) ([]PendingAction, error) {
	var out []PendingAction
	err := s.db.gorm.WithContext(ctx).Model(&fetchedMessage{}).
		Select("source_key", "action").
		Where(`mailbox_id = ? AND action_done_at IS NULL AND source_key LIKE ? ESCAPE '\'`,
			mailboxID, likePrefix(prefix)).
		Order("fetched_at, source_key").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("read pending actions: %w", err)
	}
	// SQLite's LIKE ignores ASCII case; folders "Archive" and "archive"
	// are different folders.
	exact := out[:0]
	for _, p := range out {
		if strings.HasPrefix(p.SourceKey, prefix) {
			exact = append(exact, p)
		}
	}
	return exact, nil
}

// MarkDone records that the server applied the after-fetch action of keys.
func (s *Tickets) MarkDone(ctx context.Context, mailboxID int64, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	err := s.db.gorm.WithContext(ctx).Model(&fetchedMessage{}).
		Where("mailbox_id = ? AND source_key IN ?", mailboxID, keys).
		Update("action_done_at", s.db.now()).Error
	if err != nil {
		return fmt.Errorf("mark actions done: %w", err)
	}
	return nil
}

// likePrefix makes a LIKE pattern matching strings that start with prefix:
// LIKE, unlike substr, which counts characters in SQL and bytes in Go,
// works for folder names such as "Входящие"; '%' and '_' in a folder name
// are escaped.
func likePrefix(prefix string) string {
	var b strings.Builder
	for _, c := range prefix {
		if c == '%' || c == '_' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String() + "%"
}

// Forget deletes the ledger entries of keys starting with prefix that are
// no longer on the server (not in present) and owe nothing. POP3 lists
// the whole maildrop each pass, so without this the ledger would grow with
// every message ever fetched. ticket_messages keeps its unique source
// keys; a UIDL a server reuses for another message is stored under the key
// with a digest appended (see Tickets.saveConflict).
func (s *Tickets) Forget(ctx context.Context, mailboxID int64, prefix string, present []string) (int, error) {
	var keys []string
	err := s.db.gorm.WithContext(ctx).Model(&fetchedMessage{}).
		Where(`mailbox_id = ? AND action_done_at IS NOT NULL AND source_key LIKE ? ESCAPE '\'`,
			mailboxID, likePrefix(prefix)).
		Pluck("source_key", &keys).Error
	if err != nil {
		return 0, fmt.Errorf("read ledger: %w", err)
	}
	keep := make(map[string]bool, len(present))
	for _, k := range present {
		keep[k] = true
	}
	var gone []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) && !keep[k] {
			gone = append(gone, k)
		}
	}
	const batch = 500
	for start := 0; start < len(gone); start += batch {
		end := min(start+batch, len(gone))
		err := s.db.gorm.WithContext(ctx).
			Where("mailbox_id = ? AND source_key IN ?", mailboxID, gone[start:end]).
			Delete(&fetchedMessage{}).Error
		if err != nil {
			return start, fmt.Errorf("forget fetched messages: %w", err)
		}
	}
	return len(gone), nil
}
