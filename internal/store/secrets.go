package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/internal/secret"
)

// secretColumns are the mailboxes columns stored encrypted when a key is
// configured: everything that lets a holder read the mailbox. The client
// certificate is public and stays plain.
var secretColumns = []struct {
	name  string
	field func(*Mailbox) *string
}{
	{"password", func(m *Mailbox) *string { return &m.Password }},
	{"client_secret", func(m *Mailbox) *string { return &m.ClientSecret }},
	{"client_private_key", func(m *Mailbox) *string { return &m.ClientPrivateKey }},
	{"refresh_token", func(m *Mailbox) *string { return &m.RefreshToken }},
	{"access_token", func(m *Mailbox) *string { return &m.AccessToken }},
	{"smtp_access_token", func(m *Mailbox) *string { return &m.SMTPAccessToken }},
}

// cacheColumn reports whether a secret column is only a cache of what the
// provider issues: one that cannot be opened is dropped, not an error.
func cacheColumn(name string) bool { return name == "access_token" || name == "smtp_access_token" }

// SetKeyring makes the store seal secrets with k from now on, and open
// values sealed under any of its keys. nil keeps secrets in plain text.
// Call it before the store is used.
func (db *DB) SetKeyring(k *secret.Keyring) { db.keys = k }

// Keyring is the keyring in use, nil when secrets are stored in plain text.
func (db *DB) Keyring() *secret.Keyring { return db.keys }

// Digest is a digest of parts that reveals nothing of them to a reader of
// the database when a key is configured (see secret.Keyring.Digest).
func (db *DB) Digest(parts ...string) string { return db.keys.Digest(parts...) }

func place(column string, id int64) []byte { return secret.Place("mailboxes", column, id) }

// SecretError is a secret column that cannot be decrypted; its message
// says what to do.
type SecretError struct {
	MailboxID int64
	Column    string
	Err       error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("mailbox setting %s cannot be decrypted: %v. Do this: %s", e.Column, e.Err, e.fix())
}

func (e *SecretError) Unwrap() error { return e.Err }

func (e *SecretError) fix() string {
	again := "store the value again in plain text (the fetcher encrypts it when it next reads it)"
	if e.Column == "refresh_token" || cacheColumn(e.Column) {
		again = "run `fetcher authorize` for this mailbox"
	}
	switch {
	case errors.Is(e.Err, secret.ErrNoKey):
		return "set FETCHER_SECRET_KEY (or FETCHER_SECRET_KEY_FILE) to the key the fetcher encrypted it with, or " + again
	case errors.Is(e.Err, secret.ErrUnknownKey):
		return "add the key it was encrypted with to FETCHER_SECRET_KEY_OLD (see docs/security.md, key rotation), or " + again
	default:
		return "the stored value was altered or copied from another row or column; " + again
	}
}

// staleValue is a stored secret to seal again: plain text written by an
// admin, or a value sealed under an old key.
type staleValue struct {
	column, stored, plain string
}

// openSecrets replaces m's stored secrets by their plain text and returns
// the ones that should be sealed again. Each column is opened on its own:
// one that cannot be opened is left empty and reported (the first such
// error is returned), while the others are still opened and, if stale,
// sealed, so one damaged value does not keep its neighbours in plain text.
// An access token that cannot be opened is only a cache: it is dropped
// without an error, and the next refresh replaces it.
func (db *DB) openSecrets(m *Mailbox) ([]staleValue, error) {
	var stale []staleValue
	var first error
	for _, c := range secretColumns {
		p := c.field(m)
		stored := *p
		plain, err := db.keys.Open(stored, place(c.name, m.ID))
		*p = plain
		switch {
		case err != nil && cacheColumn(c.name):
			*p = ""
		case err != nil && first == nil:
			first = &SecretError{MailboxID: m.ID, Column: c.name, Err: err}
		case err == nil && db.keys.Stale(stored):
			stale = append(stale, staleValue{column: c.name, stored: stored, plain: plain})
		}
	}
	return stale, first
}

// reseal seals stale values of mailbox id in place. Each UPDATE applies
// only while the column still holds the value read, so a token rotated by
// another worker meanwhile is never overwritten with an older one. It
// reports how many values it sealed. updated_at is left alone: the
// settings did not change.
func (db *DB) reseal(tx *gorm.DB, id int64, stale []staleValue) (int, error) {
	n := 0
	for _, v := range stale {
		sealed, err := db.keys.Seal(v.plain, place(v.column, id))
		if err != nil {
			return n, fmt.Errorf("encrypt %s of mailbox %d: %w", v.column, id, err)
		}
		res := tx.Model(&Mailbox{}).Where("id = ? AND "+v.column+" = ?", id, v.stored).UpdateColumn(v.column, sealed)
		if res.Error != nil {
			return n, fmt.Errorf("encrypt %s of mailbox %d: %w", v.column, id, res.Error)
		}
		n += int(res.RowsAffected)
	}
	return n, nil
}

// sealColumns seals the secret columns present in cols (an update of
// mailbox id) in place, so no caller can write a secret in plain text by
// accident.
func (db *DB) sealColumns(id int64, cols map[string]any) error {
	for _, c := range secretColumns {
		v, ok := cols[c.name].(string)
		if !ok {
			continue
		}
		sealed, err := db.keys.Seal(v, place(c.name, id))
		if err != nil {
			return fmt.Errorf("encrypt %s of mailbox %d: %w", c.name, id, err)
		}
		cols[c.name] = sealed
	}
	return nil
}

// secretCols returns m's secret fields as columns to update.
func secretCols(m *Mailbox) map[string]any {
	cols := map[string]any{}
	for _, c := range secretColumns {
		if v := *c.field(m); v != "" {
			cols[c.name] = v
		}
	}
	return cols
}

// clearSecrets empties m's secret fields.
func clearSecrets(m *Mailbox) {
	for _, c := range secretColumns {
		*c.field(m) = ""
	}
}

// SealReport is what Reseal did.
type SealReport struct {
	Mailboxes int // rows read
	Sealed    int // values sealed under the primary key
	Failed    []error
}

// Reseal seals every secret that is plain or under an old key with the
// primary key, mailbox by mailbox (`fetcher secrets rotate`). A mailbox
// whose values cannot be opened is reported and left as it is.
func (s *Mailboxes) Reseal(ctx context.Context) (SealReport, error) {
	var rep SealReport
	if !s.db.keys.Enabled() {
		return rep, errors.New("no secret key is configured: set FETCHER_SECRET_KEY or FETCHER_SECRET_KEY_FILE")
	}
	var ids []int64
	if err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).Order("id").Pluck("id", &ids).Error; err != nil {
		return rep, fmt.Errorf("list mailboxes: %w", err)
	}
	for _, id := range ids {
		n, err := s.resealOne(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil && ctx.Err() != nil {
			return rep, err
		}
		rep.Mailboxes++
		rep.Sealed += n
		if err != nil {
			rep.Failed = append(rep.Failed, fmt.Errorf("mailbox %d: %w", id, err))
		}
	}
	return rep, nil
}

func (s *Mailboxes) resealOne(ctx context.Context, id int64) (int, error) {
	var m Mailbox
	if err := s.db.gorm.WithContext(ctx).Take(&m, id).Error; err != nil {
		return 0, notFound(err, fmt.Sprintf("mailbox %d", id))
	}
	stale, openErr := s.db.openSecrets(&m)
	var n int
	err := s.db.tx(ctx, func(tx *gorm.DB) error {
		var rerr error
		n, rerr = s.db.reseal(tx, id, stale)
		return rerr
	})
	return n, errors.Join(openErr, err)
}

// KeyUse counts stored secret values by the key that sealed them; "" is
// plain text (`fetcher secrets status`).
func (s *Mailboxes) KeyUse(ctx context.Context) (map[string]int, error) {
	cols := make([]string, len(secretColumns))
	for i, c := range secretColumns {
		cols[i] = c.name
	}
	rows, err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).Select(cols).Rows()
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	defer func() { _ = rows.Close() }()
	use := map[string]int{}
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read secrets: %w", err)
		}
		for _, v := range vals {
			if v.String != "" {
				use[secret.KeyID(v.String)]++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return use, nil
}
