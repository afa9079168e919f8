package store

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/fetcherhq/fetcher/migrations"
)

// migrationLockKey is the Postgres advisory lock that serializes migrations
// between workers starting at the same time (an arbitrary constant: "fetch").
const migrationLockKey = 0x6665746368

// Migration is one schema step.
type Migration struct {
	Version string // the file name without .up.sql, e.g. "001_create_mailboxes"
	Up      string
	Down    string
}

// Migrations lists the embedded migrations of a dialect in the order they
// apply.
func Migrations(dialect string) ([]Migration, error) {
	names, err := fs.Glob(migrations.FS, dialect+"/*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".up.sql")
		up, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		down, err := fs.ReadFile(migrations.FS, strings.TrimSuffix(name, ".up.sql")+".down.sql")
		if err != nil {
			return nil, fmt.Errorf("read down migration of %s: %w", version, err)
		}
		out = append(out, Migration{Version: version, Up: string(up), Down: string(down)})
	}
	return out, nil
}

// Migrate applies every migration not yet recorded in schema_migrations, each
// in its own transaction, and returns the versions it applied. Two workers
// starting together do not race: on Postgres they queue on an advisory lock,
// on SQLite on the database's write lock, and each re-reads what is applied
// once it holds the lock.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	all, err := Migrations(db.dialect)
	if err != nil {
		return nil, err
	}
	var applied []string
	err = db.withMigrationLock(ctx, func(conn *gorm.DB) error {
		if err := ensureMigrationTable(conn); err != nil {
			return err
		}
		for _, m := range all {
			ok, err := applyUp(conn, m)
			if err != nil {
				return err
			}
			if ok {
				applied = append(applied, m.Version)
			}
		}
		return nil
	})
	return applied, err
}

// MigrateDown reverts the newest applied migration and returns its version,
// or "" when none is applied.
func (db *DB) MigrateDown(ctx context.Context) (string, error) {
	all, err := Migrations(db.dialect)
	if err != nil {
		return "", err
	}
	var reverted string
	err = db.withMigrationLock(ctx, func(conn *gorm.DB) error {
		if err := ensureMigrationTable(conn); err != nil {
			return err
		}
		for i := len(all) - 1; i >= 0 && reverted == ""; i-- {
			ok, err := applyDown(conn, all[i])
			if err != nil {
				return err
			}
			if ok {
				reverted = all[i].Version
			}
		}
		return nil
	})
	return reverted, err
}

// PendingMigrations returns the versions not yet applied.
func (db *DB) PendingMigrations(ctx context.Context) ([]string, error) {
	all, err := Migrations(db.dialect)
	if err != nil {
		return nil, err
	}
	conn := db.gorm.WithContext(ctx)
	if err := ensureMigrationTable(conn); err != nil {
		return nil, err
	}
	var done []string
	if err := conn.Raw("SELECT version FROM schema_migrations").Scan(&done).Error; err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	have := make(map[string]bool, len(done))
	for _, v := range done {
		have[v] = true
	}
	var pending []string
	for _, m := range all {
		if !have[m.Version] {
			pending = append(pending, m.Version)
		}
	}
	return pending, nil
}

func (db *DB) withMigrationLock(ctx context.Context, fn func(conn *gorm.DB) error) error {
	if db.dialect != Postgres {
		return fn(db.gorm.WithContext(ctx))
	}
	// An advisory lock belongs to a session, so take it, migrate and release
	// it on one pinned connection rather than on the pool.
	return db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", migrationLockKey).Error; err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", migrationLockKey)
		return fn(conn)
	})
}

func ensureMigrationTable(conn *gorm.DB) error {
	err := conn.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY,
		applied_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)`).Error
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return nil
}

func applyUp(conn *gorm.DB, m Migration) (bool, error) {
	applied := false
	err := conn.Transaction(func(tx *gorm.DB) error {
		done, err := isApplied(tx, m.Version)
		if err != nil || done {
			return err
		}
		if err := tx.Exec(m.Up).Error; err != nil {
			return fmt.Errorf("apply %s: %w", m.Version, err)
		}
		applied = true
		return tx.Exec("INSERT INTO schema_migrations (version) VALUES (?)", m.Version).Error
	})
	return applied, err
}

func applyDown(conn *gorm.DB, m Migration) (bool, error) {
	reverted := false
	err := conn.Transaction(func(tx *gorm.DB) error {
		done, err := isApplied(tx, m.Version)
		if err != nil || !done {
			return err
		}
		if err := tx.Exec(m.Down).Error; err != nil {
			return fmt.Errorf("revert %s: %w", m.Version, err)
		}
		reverted = true
		return tx.Exec("DELETE FROM schema_migrations WHERE version = ?", m.Version).Error
	})
	return reverted, err
}

func isApplied(tx *gorm.DB, version string) (bool, error) {
	var n int64
	err := tx.Raw("SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("read schema_migrations: %w", err)
	}
	return n > 0, nil
}
