package ops

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fetcherhq/fetcher/internal/store"
)

// readyTimeout is how long /readyz waits for the database.
const readyTimeout = 2 * time.Second

// Health answers the probes.
type Health struct {
	DB *store.DB
	// MaxAge is how long an enabled mailbox may go without a successful
	// pass before /readyz names it overdue.
	MaxAge time.Duration
	// Heartbeat, when set, makes /healthz fail once the worker loop has
	// shown no sign of life for longer than MaxSilence: a pass that hangs
	// (a bug, a deadlock) gets the process restarted.
	Heartbeat  *Heartbeat
	MaxSilence time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves /metrics, /healthz and /readyz.
func Handler(m *Metrics, h *Health) http.Handler {
	mux := http.NewServeMux()
	// ContinueOnError: a collector that fails leaves the rest of the
	// scrape intact.
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.ready)
	return mux
}

// live is 200 while the worker loop shows signs of life.
func (h *Health) live(w http.ResponseWriter, _ *http.Request) {
	if h.Heartbeat != nil && h.MaxSilence > 0 {
		if quiet := h.Heartbeat.Since(h.now()); quiet > h.MaxSilence {
			text(w, http.StatusServiceUnavailable, fmt.Sprintf("not alive: the worker loop has shown no progress for %s (more than %s): a pass hangs\n",
				quiet.Round(time.Second), h.MaxSilence))
			return
		}
	}
	text(w, http.StatusOK, "ok\n")
}

// ready is 200 when the database answers within readyTimeout and no
// enabled mailbox is overdue; else 503, with the reason in plain text.
func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var one int
	if err := h.DB.QueryRow(ctx, "SELECT 1", nil, &one); err != nil {
		text(w, http.StatusServiceUnavailable, fmt.Sprintf("not ready: the database does not answer within %s: %v\n", readyTimeout, err))
		return
	}
	boxes, err := h.DB.Mailboxes().List(ctx)
	if err != nil {
		text(w, http.StatusServiceUnavailable, fmt.Sprintf("not ready: cannot read the mailboxes: %v\n", err))
		return
	}
	if late := overdue(boxes, h.now(), h.MaxAge); len(late) > 0 {
		text(w, http.StatusServiceUnavailable, fmt.Sprintf("not ready: %d mailboxes without a successful pass for more than %s (FETCHER_READY_MAX_AGE):\n%s",
			len(late), h.MaxAge, strings.Join(late, "")))
		return
	}
	text(w, http.StatusOK, "ok\n")
}

// overdue describes, one line each, the enabled mailboxes whose last
// success (or creation, when none) is more than maxAge before now,
// whatever their status: a mailbox parked in needs_reauth is as overdue
// as one failing, and its status says why.
func overdue(boxes []store.Mailbox, now time.Time, maxAge time.Duration) []string {
	var late []string
	for _, mb := range boxes {
		since, ok := sinceSuccess(mb)
		if !mb.Enabled || !ok || now.Sub(since) <= maxAge {
			continue
		}
		last := "never"
		if !mb.LastSuccessAt.IsZero() {
			last = mb.LastSuccessAt.UTC().Format(time.RFC3339)
		}
		late = append(late, fmt.Sprintf("mailbox %q: status %s, last success %s\n", mb.Name, mb.Status, last))
	}
	slices.Sort(late)
	return late
}

func (h *Health) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
