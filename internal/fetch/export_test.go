package fetch

import (
	"testing"

	"github.com/fetcherhq/fetcher/internal/store"
)

// SetFetchHook runs hook at the start of every mailbox's fetch for the
// rest of the test. Tests using it must not be parallel: the hook is
// global.
func SetFetchHook(t *testing.T, hook func(store.Mailbox)) {
	t.Helper()
	fetchHook = hook
	t.Cleanup(func() { fetchHook = nil })
}
