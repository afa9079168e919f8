//go:build !unix

package store

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile is not implemented off Unix: the single-worker rule of the
// embedded database is then up to the admin (docs/configuration.md).
func lockFile(*os.File) error { return nil }
