package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// errEmptyRefreshToken guards the one rule of StoreAuthorization: a sign-in
// that brought back no refresh token must not wipe the stored one.
var errEmptyRefreshToken = errors.New("the sign-in returned no refresh token; nothing was stored")

// StoreAuthorization stores the tokens of a completed sign-in (fetcher
// authorize) and puts the mailbox back into service, in one transaction:
// refresh token, access token and expiry; status active; last_error,
// last_error_at and reauth_fingerprint cleared; the backoff reset
// (next_attempt_at NULL, consecutive_failures 0).
//
// It takes the row lock that refreshes take (see WithTokenLock), so a worker
// refreshing the mailbox at the same moment either finishes first and is
// then overwritten, or waits and then reads the new tokens: it never stores
// a token of the old grant over the new one. An empty refresh token is an
// error and changes nothing.
func (s *Mailboxes) StoreAuthorization(ctx context.Context, id int64, t oauth.Token) error {
	if t.RefreshToken == "" {
		return fmt.Errorf("store tokens of mailbox %d: %w", id, errEmptyRefreshToken)
	}
	return s.db.tx(ctx, func(tx *gorm.DB) error {
		// The row is locked without opening the tokens it replaces: a sign-in
		// is how a mailbox whose tokens cannot be decrypted is repaired.
		if err := s.lockRow(tx, id); err != nil {
			return err
		}
		now := s.db.now()
		cols := map[string]any{
			"refresh_token":           t.RefreshToken,
			"access_token":            t.AccessToken,
			"access_token_expires_at": nullTime(t.Expiry),
			// The sending token came from the grant this sign-in replaces
			// (maybe another account, or without SMTP.Send): dropped.
			"smtp_access_token":            nil,
			"smtp_access_token_expires_at": nil,
			"status":                       StatusActive,
			"last_error":                   nil,
			"last_error_at":                nil,
			"reauth_fingerprint":           nil,
			"next_attempt_at":              nil,
			"consecutive_failures":         0,
			"updated_at":                   now,
		}
		if err := s.db.sealColumns(id, cols); err != nil {
			return err
		}
		err := tx.Model(&Mailbox{}).Where("id = ?", id).Updates(cols).Error
		if err != nil {
			return fmt.Errorf("store tokens of mailbox %d: %w", id, err)
		}
		return nil
	})
}
