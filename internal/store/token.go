package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// tokenTxTimeout bounds the token transaction: a lock wait behind another
// worker's refresh (one HTTP request, at most 30 s) plus the refresh.
const tokenTxTimeout = 2 * time.Minute

// RefreshFunc decides, given the tokens stored now, which tokens to keep:
// it returns cur unchanged when the cached access token is still good, or
// new tokens from the provider.
type RefreshFunc func(cur oauth.Token) (oauth.Token, error)

// WithTokenLock reads a mailbox's tokens under a lock on its row, hands them
// to fn and stores what fn returns, all in one transaction, and returns the
// token to use only once it is committed.
//
// Why: Microsoft rotates the refresh token on every use, and providers that
// detect reuse revoke the whole token family. Holding the row lock across
// the refresh means a second worker waits, then re-reads and sees the token
// the first one stored, so the same refresh token is never sent twice. And
// because the new refresh token is committed before the access token is
// used, a crash right after the refresh cannot lose it. An empty refresh
// token in fn's result never overwrites a stored one.
func (s *Mailboxes) WithTokenLock(ctx context.Context, id int64, fn RefreshFunc) (oauth.Token, error) {
	return s.withTokens(ctx, id, fetchCache, fn)
}

// WithSendTokenLock is WithTokenLock for the access token that sends mail
// (smtp_access_token), when its scopes differ from the fetching token's
// (Microsoft's SMTP.Send is a scope of its own). The refresh token is the
// same, under the same lock: a refresh for either rotates it.
func (s *Mailboxes) WithSendTokenLock(ctx context.Context, id int64, fn RefreshFunc) (oauth.Token, error) {
	return s.withTokens(ctx, id, sendCache, fn)
}

// tokenCache names the columns caching one access token.
type tokenCache struct{ token, expires string }

var (
	fetchCache = tokenCache{"access_token", "access_token_expires_at"}
	sendCache  = tokenCache{"smtp_access_token", "smtp_access_token_expires_at"}
)

func (s *Mailboxes) withTokens(ctx context.Context, id int64, cache tokenCache, fn RefreshFunc) (oauth.Token, error) {
	var out oauth.Token
	// The transaction must not end with ctx: once the provider has answered
	// with a rotated refresh token, a SIGTERM or the mailbox timeout
	// arriving before the commit would roll the new token back, and a
	// provider that revokes token families on reuse would then lock the
	// mailbox out. (fn must likewise not abandon its request on ctx.)
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTxTimeout)
	defer cancel()
	issued := false
	err := s.db.tx(txCtx, func(tx *gorm.DB) error {
		cur, err := s.lockTokens(tx, id, cache)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		out = next
		if next == cur {
			return nil
		}
		issued = true
		return s.saveTokens(tx, id, cache, next)
	})
	if err != nil && issued {
		// The provider issued (and may have rotated) tokens, but storing
		// them failed: a failover, a dropped connection. Losing them would
		// leave only the refresh token just spent, so try again on fresh
		// transactions before giving up.
		err = s.retrySave(txCtx, id, cache, out, err)
	}
	if err != nil {
		return oauth.Token{}, err
	}
	return out, nil
}

// retrySave stores issued tokens after the locked transaction failed.
func (s *Mailboxes) retrySave(ctx context.Context, id int64, cache tokenCache, t oauth.Token, first error) error {
	for _, wait := range []time.Duration{time.Second, 3 * time.Second, 10 * time.Second} {
		select {
		case <-ctx.Done():
			return first
		case <-time.After(wait):
		}
		if err := s.db.tx(ctx, func(tx *gorm.DB) error { return s.saveTokens(tx, id, cache, t) }); err == nil {
			return nil
		}
	}
	return fmt.Errorf("the provider issued new tokens but they could not be stored; if the provider rotated the refresh token, the mailbox may need fetcher authorize: %w", first)
}

func (s *Mailboxes) lockTokens(tx *gorm.DB, id int64, cache tokenCache) (oauth.Token, error) {
	var row struct {
		RefreshToken string
		AccessToken  string
		Expires      time.Time
	}
	q := tx.Model(&Mailbox{}).
		Select("refresh_token", cache.token+" AS access_token", cache.expires+" AS expires").
		Where("id = ?", id)
	if s.db.dialect == Postgres {
		// SQLite has no row locks; its BEGIN IMMEDIATE (see sqliteParams)
		// already holds the database's write lock for the transaction.
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Take(&row).Error; err != nil {
		return oauth.Token{}, notFound(err, fmt.Sprintf("lock tokens of mailbox %d", id))
	}
	m := Mailbox{ID: id, RefreshToken: row.RefreshToken}
	if cache == sendCache {
		m.SMTPAccessToken = row.AccessToken
	} else {
		m.AccessToken = row.AccessToken
	}
	stale, err := s.db.openSecrets(&m)
	if err != nil {
		return oauth.Token{}, err
	}
	// The row is locked, so sealing plain or old-key tokens here cannot
	// race a refresh.
	if _, err := s.db.reseal(tx, id, stale); err != nil {
		return oauth.Token{}, err
	}
	access := m.AccessToken
	if cache == sendCache {
		access = m.SMTPAccessToken
	}
	return oauth.Token{AccessToken: access, RefreshToken: m.RefreshToken, Expiry: row.Expires}, nil
}

// lockRow takes the row lock that lockTokens takes, reading nothing.
func (s *Mailboxes) lockRow(tx *gorm.DB, id int64) error {
	var found int64
	q := tx.Model(&Mailbox{}).Select("id").Where("id = ?", id)
	if s.db.dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Take(&found).Error; err != nil {
		return notFound(err, fmt.Sprintf("lock mailbox %d", id))
	}
	return nil
}

func (s *Mailboxes) saveTokens(tx *gorm.DB, id int64, cache tokenCache, t oauth.Token) error {
	cols := map[string]any{
		cache.token:   t.AccessToken,
		cache.expires: nullTime(t.Expiry),
		"updated_at":  s.db.now(),
	}
	if t.RefreshToken != "" {
		cols["refresh_token"] = t.RefreshToken
	}
	if err := s.db.sealColumns(id, cols); err != nil {
		return err
	}
	err := tx.Model(&Mailbox{}).Where("id = ?", id).Updates(cols).Error
	if err != nil {
		return fmt.Errorf("store tokens of mailbox %d: %w", id, err)
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}
