package store

import (
	"context"
	"fmt"
	"time"
)

// Lease takes mailbox id for owner until now+ttl, unless another owner
// holds a lease that has not expired. It reports whether owner holds the
// lease now. One UPDATE decides it: under concurrent workers the database
// lets exactly one of them match the row, so two replicas or an
// overlapping cron run never fetch one mailbox at once.
func (s *Mailboxes) Lease(ctx context.Context, id int64, owner string, now time.Time, ttl time.Duration) (bool, error) {
	res := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).
		Where("id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at IS NULL OR lease_expires_at < ?)", id, owner, now.UTC()).
		Updates(map[string]any{"lease_owner": owner, "lease_expires_at": now.Add(ttl).UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("lease mailbox %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Renew extends owner's lease of mailbox id to until. It reports false
// when the lease is no longer owner's: it expired and another worker took
// the mailbox.
func (s *Mailboxes) Renew(ctx context.Context, id int64, owner string, until time.Time) (bool, error) {
	res := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).
		Where("id = ? AND lease_owner = ?", id, owner).
		Update("lease_expires_at", until.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("renew lease of mailbox %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Release gives up owner's lease of mailbox id, if it still holds it.
func (s *Mailboxes) Release(ctx context.Context, id int64, owner string) error {
	err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).
		Where("id = ? AND lease_owner = ?", id, owner).
		Updates(map[string]any{"lease_owner": nil, "lease_expires_at": nil}).Error
	if err != nil {
		return fmt.Errorf("release lease of mailbox %d: %w", id, err)
	}
	return nil
}
