package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLite result codes (sqlite.org/rescode.html) for values the database
// refuses as such.
const (
	sqliteTooBig   = 18 // SQLITE_TOOBIG: string or blob past the size limit
	sqliteMismatch = 20 // SQLITE_MISMATCH: data type mismatch
)

// IsDataError reports whether the database refused a value itself (too
// long for an index, an invalid byte sequence, past a size limit), as
// opposed to being unreachable or busy: saving the same value again fails
// the same way, while a smaller value can succeed.
func IsDataError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 22: data exception; class 54: program limit exceeded
		// (e.g. an index row past its size limit).
		return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "54")
	}
	var se interface{ Code() int }
	if errors.As(err, &se) {
		base := se.Code() & 0xff // extended result codes keep the base in the low byte
		return base == sqliteTooBig || base == sqliteMismatch
	}
	return false
}
