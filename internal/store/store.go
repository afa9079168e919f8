// Package store is the fetcher's only door to the database: the mailbox
// rows admins write, the ticket rows the ticket system reads, and the
// fetcher's own bookkeeping. It speaks to Postgres when given a postgres://
// URL and to an embedded pure-Go SQLite file otherwise, through GORM.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fetcherhq/fetcher/internal/secret"
)

// Dialects the store speaks.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// DefaultSQLitePath is where the embedded database lives when no
// DATABASE_URL is given.
const DefaultSQLitePath = "fetcher.db"

// sqliteParams make the embedded database safe for one worker: WAL so
// readers do not block the writer, a busy timeout instead of instant
// "database is locked" errors, foreign keys on (SQLite has them off by
// default), and BEGIN IMMEDIATE so a transaction takes the write lock up
// front: two processes refreshing one mailbox's token serialize instead of
// deadlocking on a lock upgrade.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// DB is an open database.
type DB struct {
	gorm    *gorm.DB
	dialect string
	url     string
	// keys seals and opens the secret columns; nil stores them in plain
	// text (see SetKeyring).
	keys *secret.Keyring
	// Now is the clock for the timestamps the fetcher writes.
	Now func() time.Time
	// copyAllowed caches whether batches may use COPY (see copyOK): 1
	// yes, -1 no, 0 not known yet.
	copyAllowed atomic.Int32
}

// Open connects to the database named by rawURL: "postgres://…" or
// "postgresql://…" for Postgres, "sqlite:PATH" or a bare file path for the
// embedded database, and "" for DefaultSQLitePath. It does not migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	dialect, dsn := parseURL(rawURL)
	var dial gorm.Dialector
	if dialect == Postgres {
		dial = postgres.Open(dsn)
	} else {
		dial = sqlite.Open(dsn)
	}
	g, err := gorm.Open(dial, &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	db := &DB{gorm: g, dialect: dialect, url: rawURL, Now: time.Now}
	if err := db.configurePool(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) configurePool(ctx context.Context) error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return fmt.Errorf("database handle: %w", err)
	}
	if db.dialect == SQLite {
		// One connection: SQLite has one writer anyway, and a single
		// connection makes BEGIN IMMEDIATE queue in-process rather than
		// spin on SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s database: %w", db.dialect, err)
	}
	return nil
}

// SQLitePath returns the file of the embedded database rawURL names, and
// false when rawURL names a Postgres database.
func SQLitePath(rawURL string) (string, bool) {
	dialect, dsn := parseURL(rawURL)
	if dialect != SQLite {
		return "", false
	}
	path, _, _ := strings.Cut(dsn, "?")
	return path, true
}

func parseURL(raw string) (dialect, dsn string) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return Postgres, raw
	case strings.Contains(raw, "host=") || strings.Contains(raw, "dbname="):
		return Postgres, raw // libpq key=value form
	case raw == "":
		raw = DefaultSQLitePath
	case strings.HasPrefix(raw, "sqlite://"):
		raw = strings.TrimPrefix(raw, "sqlite://")
	case strings.HasPrefix(raw, "sqlite:"):
		raw = strings.TrimPrefix(raw, "sqlite:")
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return SQLite, raw + sep + sqliteParams
}

// Redact returns rawURL with any password replaced, for logs and errors:
// in the user info, in a password= query parameter, or in the libpq
// key=value form.
func Redact(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return kvPassword.ReplaceAllString(rawURL, "${1}xxxxx")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable database URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var kvPassword = regexp.MustCompile(`(password\s*=\s*)('[^']*'|\S+)`)

// URL is the URL the database was opened with. It may hold a password:
// print it through Redact.
func (db *DB) URL() string { return db.url }

// Dialect reports Postgres or SQLite.
func (db *DB) Dialect() string { return db.dialect }

// Close closes the connection pool.
func (db *DB) Close() error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

func (db *DB) now() time.Time { return db.Now().UTC() }

// ErrNotFound is returned when a row asked for by id or name does not exist.
var ErrNotFound = errors.New("not found")

func notFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Exec runs a statement, for admin tools and tests (SQL with ? placeholders).
func (db *DB) Exec(ctx context.Context, sql string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(sql, args...).Error
}

// QueryRow runs a query returning one row and scans it into dest.
func (db *DB) QueryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	return db.gorm.WithContext(ctx).Raw(sql, args...).Row().Scan(dest...)
}
