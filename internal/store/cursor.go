package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Cursor is how far a mailbox's IMAP folder has been read: the folder's
// UIDVALIDITY and the highest UID whose rows are committed. UIDs only grow
// while UIDVALIDITY stays the same (RFC 9051 section 2.3.1.1), so the next
// run asks only for UIDs above LastUID.
type Cursor struct {
	MailboxID   int64  `gorm:"primaryKey"`
	Folder      string `gorm:"primaryKey"`
	UIDValidity uint32 `gorm:"column:uid_validity"`
	LastUID     uint32 `gorm:"column:last_uid"`
	UpdatedAt   time.Time
}

// TableName maps Cursor to the mailbox_cursors table.
func (Cursor) TableName() string { return "mailbox_cursors" }

// Cursor returns the stored cursor of a mailbox's folder, or a zero cursor
// (nothing read yet) when there is none.
func (s *Tickets) Cursor(ctx context.Context, mailboxID int64, folder string) (Cursor, error) {
	c := Cursor{MailboxID: mailboxID, Folder: folder}
	err := s.db.gorm.WithContext(ctx).
		Where("mailbox_id = ? AND folder = ?", mailboxID, folder).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read cursor of %q: %w", folder, err)
	}
	return c, nil
}

// SaveCursor stores a cursor on its own, for a run that found nothing new
// under a new UIDVALIDITY.
func (s *Tickets) SaveCursor(ctx context.Context, c Cursor) error {
	return s.db.saveCursor(s.db.gorm.WithContext(ctx), c)
}

func (db *DB) saveCursor(tx *gorm.DB, c Cursor) error {
	c.UpdatedAt = db.now()
	err := tx.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "mailbox_id"}, {Name: "folder"}},
		DoUpdates: clause.Assignments(map[string]any{
			"uid_validity": c.UIDValidity, "last_uid": c.LastUID, "updated_at": db.now(),
		}),
	}).Create(&c).Error
	if err != nil {
		return fmt.Errorf("save cursor of %q: %w", c.Folder, err)
	}
	return nil
}
