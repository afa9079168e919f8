package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Mailbox statuses (mailboxes.status).
const (
	StatusActive      = "active"
	StatusNeedsReauth = "needs_reauth"
	StatusFailing     = "failing"
)

// Mailbox is one row of the mailboxes table (shared SCHEMA.md). It holds
// secrets, so String and GoString print only its id and name: a mailbox
// formatted into a log line or an error never leaks a token.
type Mailbox struct {
	ID                    int64 `gorm:"primaryKey"`
	Name                  string
	Protocol              string
	Host                  string
	Port                  int
	UseSSL                bool `gorm:"column:use_ssl"`
	StartTLS              bool `gorm:"column:starttls"`
	Username              string
	AuthType              string
	Password              string
	OAuthProvider         string `gorm:"column:oauth_provider"`
	OAuthGrant            string `gorm:"column:oauth_grant"`
	TenantID              string
	ClientID              string
	ClientSecret          string
	ClientCertificate     string // PEM certificate of a certificate credential
	ClientPrivateKey      string // PEM private key of a certificate credential
	RedirectURL           string
	Scopes                string
	AuthorityURL          string
	AuthURL               string
	TokenURL              string
	RefreshToken          string
	AccessToken           string
	AccessTokenExpiresAt  time.Time
	RefreshBeforeSeconds  int
	ClientSecretExpiresAt time.Time
	Folder                string
	AfterFetch            string
	MoveToFolder          string
	// AutoReplyTickets lets an auto-reply or bounce that matches no ticket
	// open one of its own; by default it joins the mailbox's collecting
	// ticket (tickets.kind = 'auto_replies').
	AutoReplyTickets bool
	// MaxMessageBytes is the size limit for this mailbox; 0 (or NULL)
	// means the fetcher's default.
	MaxMessageBytes int64
	// TLSCACert holds PEM certificates to trust for this mailbox's server
	// on top of the system's (tls_ca_cert).
	TLSCACert string `gorm:"column:tls_ca_cert"`
	// TLSSkipVerify accepts any server certificate; every run logs a
	// warning while it is set.
	TLSSkipVerify bool `gorm:"column:tls_skip_verify"`
	// AllowPlaintext lets a mailbox without TLS send its credentials
	// unencrypted (a local test server).
	AllowPlaintext bool
	// Sending (smtp_*): see SMTPSettings for the defaults.
	SMTPEnabled              bool      `gorm:"column:smtp_enabled"`
	SMTPHost                 string    `gorm:"column:smtp_host"`
	SMTPPort                 int       `gorm:"column:smtp_port"`
	SMTPSecurity             string    `gorm:"column:smtp_security"`
	SMTPUsername             string    `gorm:"column:smtp_username"`
	SMTPFrom                 string    `gorm:"column:smtp_from"`
	SMTPFromName             string    `gorm:"column:smtp_from_name"`
	SMTPScopes               string    `gorm:"column:smtp_scopes"`
	SMTPAccessToken          string    `gorm:"column:smtp_access_token"`
	SMTPAccessTokenExpiresAt time.Time `gorm:"column:smtp_access_token_expires_at"`
	SMTPLastError            string    `gorm:"column:smtp_last_error"`
	SMTPLastErrorAt          time.Time `gorm:"column:smtp_last_error_at"`
	SMTPLastSuccessAt        time.Time `gorm:"column:smtp_last_success_at"`
	Enabled                  bool
	Status                   string
	LastError                string
	LastErrorAt              time.Time
	LastSuccessAt            time.Time
	NextAttemptAt            time.Time
	ConsecutiveFailures      int
	ReauthFingerprint        string
	Warning                  string
	// LeaseOwner and LeaseExpiresAt name the worker fetching the mailbox
	// now, and until when (see Lease).
	LeaseOwner     string
	LeaseExpiresAt time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName maps Mailbox to the mailboxes table.
func (Mailbox) TableName() string { return "mailboxes" }

// String names the mailbox without any of its secrets.
func (m Mailbox) String() string { return fmt.Sprintf("mailbox %d (%s)", m.ID, m.Name) }

// GoString keeps %#v from printing secrets too.
func (m Mailbox) GoString() string { return m.String() }

// LogValue keeps slog's JSON handler, which would marshal every field,
// from logging the secrets.
func (m Mailbox) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Mailboxes reads and updates mailbox rows.
type Mailboxes struct{ db *DB }

// Mailboxes returns the mailbox aggregate.
func (db *DB) Mailboxes() *Mailboxes { return &Mailboxes{db: db} }

// BadRow is a mailbox row that could not be read, e.g. a timestamp column
// holding text in the embedded database, which does not enforce types.
type BadRow struct {
	ID  int64
	Err error
}

// ListEnabled returns the enabled mailboxes in id order, and the rows that
// could not be read. Rows are read one by one, so one unreadable row costs
// that mailbox alone, and "enabled" is judged by Go's reading of the value:
// SQLite keeps an admin's enabled = 'true' as text, which its own WHERE
// would take as false.
func (s *Mailboxes) ListEnabled(ctx context.Context) ([]Mailbox, []BadRow, error) {
	var ids []int64
	if err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, nil, fmt.Errorf("list mailboxes: %w", err)
	}
	var out []Mailbox
	var bad []BadRow
	for _, id := range ids {
		m, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted meanwhile
		case err != nil && ctx.Err() != nil:
			return nil, nil, err
		case err != nil && errors.As(err, new(*SecretError)) && !m.Enabled:
			continue // a disabled mailbox's secrets are nobody's concern yet
		case err != nil:
			bad = append(bad, BadRow{ID: id, Err: err})
		case m.Enabled:
			out = append(out, m)
		}
	}
	return out, bad, nil
}

// List returns every mailbox in id order, for overviews: without its
// secrets (the secret fields are empty), so a row whose secrets cannot be
// decrypted is listed too. Get returns a mailbox with them.
func (s *Mailboxes) List(ctx context.Context) ([]Mailbox, error) {
	var out []Mailbox
	if err := s.db.gorm.WithContext(ctx).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	for i := range out {
		clearSecrets(&out[i])
	}
	return out, nil
}

// Get returns the mailbox with the given id, its secrets decrypted.
func (s *Mailboxes) Get(ctx context.Context, id int64) (Mailbox, error) {
	var m Mailbox
	err := s.db.gorm.WithContext(ctx).Take(&m, id).Error
	if err != nil {
		return m, notFound(err, fmt.Sprintf("mailbox %d", id))
	}
	return m, s.open(ctx, &m)
}

// GetByName returns the mailbox with the given name, its secrets
// decrypted.
func (s *Mailboxes) GetByName(ctx context.Context, name string) (Mailbox, error) {
	var m Mailbox
	err := s.db.gorm.WithContext(ctx).Where("name = ?", name).Take(&m).Error
	if err != nil {
		return m, notFound(err, fmt.Sprintf("mailbox %q", name))
	}
	return m, s.open(ctx, &m)
}

// open decrypts m's secrets. Values an admin wrote in plain text, or that
// an old key sealed, are sealed under the current key in place: the first
// read after an admin's INSERT is what encrypts it. A column that cannot
// be decrypted is left empty and reported; the others are opened (and
// sealed) all the same.
func (s *Mailboxes) open(ctx context.Context, m *Mailbox) error {
	stale, err := s.db.openSecrets(m)
	if len(stale) > 0 {
		// Best effort: the plain values are usable either way, and a failed
		// write is tried again at the next read (fetcher secrets rotate
		// reports what is left).
		_ = s.db.tx(ctx, func(tx *gorm.DB) error {
			_, err := s.db.reseal(tx, m.ID, stale)
			return err
		})
	}
	return err
}

// Create inserts a mailbox and sets m.ID. Empty text columns with a schema
// default (auth_type, oauth_grant, folder, after_fetch, status) and a zero
// refresh_before_seconds get that default; booleans are written as given.
func (s *Mailboxes) Create(ctx context.Context, m *Mailbox) error {
	applyMailboxDefaults(m)
	now := s.db.now()
	m.CreatedAt, m.UpdatedAt = now, now
	// The secrets are written after the insert, sealed for the row's id,
	// in the same transaction: their plain text never reaches the table.
	secrets := secretCols(m)
	row := *m
	clearSecrets(&row)
	err := s.db.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if len(secrets) == 0 {
			return nil
		}
		if err := s.db.sealColumns(row.ID, secrets); err != nil {
			return err
		}
		return tx.Model(&Mailbox{}).Where("id = ?", row.ID).Updates(secrets).Error
	})
	if err != nil {
		return fmt.Errorf("create mailbox %q: %w", m.Name, err)
	}
	m.ID = row.ID
	return nil
}

func applyMailboxDefaults(m *Mailbox) {
	setDefault(&m.AuthType, "oauth2")
	setDefault(&m.OAuthGrant, "refresh_token")
	setDefault(&m.Folder, "INBOX")
	setDefault(&m.AfterFetch, "mark_seen")
	setDefault(&m.Status, StatusActive)
	if m.RefreshBeforeSeconds == 0 {
		m.RefreshBeforeSeconds = 300
	}
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// RecordSuccess marks a mailbox active and clears its error and backoff.
func (s *Mailboxes) RecordSuccess(ctx context.Context, id int64) error {
	now := s.db.now()
	return s.update(ctx, id, map[string]any{
		"status": StatusActive, "last_error": nil, "last_error_at": nil,
		"last_success_at": now, "updated_at": now, "consecutive_failures": 0,
		"next_attempt_at": nil, "reauth_fingerprint": nil,
	})
}

// Failure is how a mailbox's pass failed and when to try it again.
type Failure struct {
	Status  string
	Message string
	// NextAttempt is the earliest time to try again; zero means the next
	// pass.
	NextAttempt time.Time
	// Fingerprint, when set, parks the mailbox until its settings no
	// longer match it: the failure needs a person to change the row.
	Fingerprint string
}

// RecordFailure stores a mailbox's failure, the error an admin reads, and
// when it will be tried again; it counts consecutive failures.
func (s *Mailboxes) RecordFailure(ctx context.Context, id int64, f Failure) error {
	now := s.db.now()
	return s.update(ctx, id, map[string]any{
		"status": f.Status, "last_error": cleanText(f.Message), "last_error_at": now, "updated_at": now,
		"consecutive_failures": gorm.Expr("consecutive_failures + 1"),
		"next_attempt_at":      nullTime(f.NextAttempt), "reauth_fingerprint": nullString(f.Fingerprint),
	})
}

// SetWarning stores (or, with "", clears) the mailbox's warning: something
// to act on before it breaks.
func (s *Mailboxes) SetWarning(ctx context.Context, id int64, warning string) error {
	return s.update(ctx, id, map[string]any{"warning": nullString(cleanText(warning))})
}

// cleanText makes a message fit a text column: an error may quote a
// server's reply, and a hostile or broken server can put a NUL byte or
// invalid UTF-8 in it, which Postgres refuses in text. Refusing it would
// lose the very failure being recorded.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Mailboxes) update(ctx context.Context, id int64, cols map[string]any) error {
	if err := s.db.sealColumns(id, cols); err != nil {
		return err
	}
	err := s.db.gorm.WithContext(ctx).Model(&Mailbox{}).Where("id = ?", id).Updates(cols).Error
	if err != nil {
		return fmt.Errorf("update mailbox %d: %w", id, err)
	}
	return nil
}

// tx runs fn in a transaction bound to ctx.
func (db *DB) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.gorm.WithContext(ctx).Transaction(fn)
}
