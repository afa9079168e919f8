package ops

import (
	"sync/atomic"
	"time"
)

// Heartbeat is the worker loop's sign of life for /healthz: beaten when a
// pass starts and whenever a mailbox's part of it ends, so a pass over
// many mailboxes keeps it fresh while a pass stuck for good lets it age.
type Heartbeat struct{ last atomic.Int64 }

// Beat records a sign of life at t.
func (h *Heartbeat) Beat(t time.Time) { h.last.Store(t.UnixNano()) }

// Since is how long before now the last sign of life was; zero before the
// first.
func (h *Heartbeat) Since(now time.Time) time.Duration {
	last := h.last.Load()
	if last == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, last))
}
