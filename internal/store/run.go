package store

import (
	"context"
	"fmt"
	"time"
)

// Run is a row of fetch_runs: one mailbox's part of one pass.
type Run struct {
	ID               int64 `gorm:"primaryKey"`
	MailboxID        int64
	StartedAt        time.Time
	FinishedAt       *time.Time
	MessagesFetched  int
	TicketsCreated   int
	MessagesAppended int
	MessagesSkipped  int
	Error            string
	// Worker names the worker that made the run.
	Worker string
}

// TableName maps Run to the fetch_runs table.
func (Run) TableName() string { return "fetch_runs" }

// Count adds one Save outcome to the run's counters.
func (r *Run) Count(o Outcome) {
	r.MessagesFetched++
	switch o {
	case Created:
		r.TicketsCreated++
	case Appended:
		r.MessagesAppended++
	case Duplicate, Known:
		r.MessagesSkipped++
	}
}

// Runs records fetch_runs.
type Runs struct{ db *DB }

// Runs returns the fetch_runs aggregate.
func (db *DB) Runs() *Runs { return &Runs{db: db} }

// Start inserts a run for a mailbox by worker, started now.
func (s *Runs) Start(ctx context.Context, mailboxID int64, worker string) (*Run, error) {
	r := &Run{MailboxID: mailboxID, StartedAt: s.db.now(), Worker: worker}
	if err := s.db.gorm.WithContext(ctx).Create(r).Error; err != nil {
		return nil, fmt.Errorf("start fetch run: %w", err)
	}
	return r, nil
}

// Finish stores the run's counters, its error ("" for none) and its end.
func (s *Runs) Finish(ctx context.Context, r *Run) error {
	now := s.db.now()
	r.FinishedAt = &now
	var errText any // NULL, not '', when the run succeeded
	if r.Error != "" {
		errText = cleanText(r.Error)
	}
	err := s.db.gorm.WithContext(ctx).Model(&Run{}).Where("id = ?", r.ID).Updates(map[string]any{
		"finished_at": now, "messages_fetched": r.MessagesFetched, "tickets_created": r.TicketsCreated,
		"messages_appended": r.MessagesAppended, "messages_skipped": r.MessagesSkipped, "error": errText,
	}).Error
	if err != nil {
		return fmt.Errorf("finish fetch run %d: %w", r.ID, err)
	}
	return nil
}
