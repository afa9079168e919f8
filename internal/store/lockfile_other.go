//go:build !unix && !windows

package store

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile does nothing on systems without file locks (js, wasip1,
// plan9), where the fetcher is not deployed; one worker per embedded
// database is then the admin's rule (docs/configuration.md).
func lockFile(*os.File) error { return nil }
