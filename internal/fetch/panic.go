package fetch

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/fetcherhq/fetcher/internal/store"
)

// fetchHook, when set by a test, runs at the start of each mailbox's
// fetch.
var fetchHook func(store.Mailbox)

// fetchGuarded fetches mb and turns a panic (a bug, or a library tripping
// over a server's answer) into that mailbox's error, so every other
// mailbox carries on. What was stored before the panic is committed and
// kept; the mailbox backs off like any failure.
func (r *Runner) fetchGuarded(ctx context.Context, mb store.Mailbox, run *store.Run, m *meter) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		what := describePanic(v)
		// The stack holds function names and raw argument words, never the
		// bytes of a string, so it cannot leak a token or a message.
		r.mailboxLog(mb).Error("bug: fetching the mailbox panicked", "panic", what, "stack", string(debug.Stack()))
		err = fmt.Errorf("internal error while fetching (%s); the messages stored before it are kept and the mailbox is tried again later. Please report it with the log line \"bug: fetching the mailbox panicked\"", what)
	}()
	if fetchHook != nil {
		fetchHook(mb)
	}
	return r.fetch(ctx, mb, run, m)
}

// describePanic names a panic without printing an arbitrary value, which
// might be built from a credential or a message: runtime errors (index out
// of range, nil dereference) are safe to show, anything else by type only.
func describePanic(v any) string {
	if e, ok := v.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("a panic with a value of type %T", v)
}
