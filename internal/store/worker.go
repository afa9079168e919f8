package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrOtherWorker means another fetcher process already runs on the
// embedded database.
var ErrOtherWorker = errors.New("another fetcher is already running on this embedded database; it allows one worker at a time: stop the other one, or use Postgres (DATABASE_URL=postgres://…) to run several")

// LockSingleWorker makes sure this process is the only worker on an
// embedded (SQLite) database, which has one writer and no leases across
// machines: it holds an exclusive lock on "PATH.lock" until release is
// called or the process ends (the operating system drops the lock of a
// killed process, so a crash never leaves it stuck). On Postgres, where
// workers coordinate with mailbox leases, it does nothing.
func (db *DB) LockSingleWorker() (release func(), err error) {
	if db.dialect != SQLite {
		return func() {}, nil
	}
	path := sqliteFile(db.url) + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open worker lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w (lock file %s)", ErrOtherWorker, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

// sqliteFile is the file path of an embedded database URL.
func sqliteFile(rawURL string) string {
	_, dsn := parseURL(rawURL)
	path, _, _ := strings.Cut(dsn, "?")
	return path
}
