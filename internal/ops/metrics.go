// Package ops is what the engineer on call watches of a long-running
// worker: Prometheus metrics on /metrics, and /healthz and /readyz for
// probes (docs/operating.md). Counters come from this process's passes;
// the per-mailbox gauges are read from the database at scrape time, so
// every replica reports the same, right, state, restarts included.
package ops

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Metrics holds a worker's metrics in a registry of its own (not the
// global one, so that tests, and two workers in one process, stay apart).
// It is the fetch.Metrics of the worker's Runner.
type Metrics struct {
	// Heartbeat, when set, is beaten at the end of every mailbox's part
	// of a pass.
	Heartbeat *Heartbeat

	reg           *prometheus.Registry
	runs          *prometheus.CounterVec
	fetched       prometheus.Counter
	created       prometheus.Counter
	appended      prometheus.Counter
	refreshes     *prometheus.CounterVec
	notifications *prometheus.CounterVec
	duration      prometheus.Histogram
}

var _ fetch.Metrics = (*Metrics)(nil)

// Outcome label values, each exported from the start at 0 so that rate()
// and alerts see a series before the first event.
var (
	runOutcomes          = []string{"ok", "failed", "interrupted"}
	refreshOutcomes      = []string{"ok", "needs_reauth", "error"}
	notificationOutcomes = []string{"sent", "failed", "retry"}
)

// NewMetrics returns the metrics of a worker on db: the counters the
// Runner feeds, the per-mailbox gauges read from db at each scrape, and
// the Go runtime's and the process's.
func NewMetrics(db *store.DB) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_runs_total", Help: "Mailbox passes of this worker, by outcome.",
		}, []string{"outcome"}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fetcher_messages_fetched_total", Help: "Messages fetched and stored by this worker.",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fetcher_tickets_created_total", Help: "Tickets opened by messages this worker stored.",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fetcher_messages_appended_total", Help: "Messages this worker stored on an existing ticket.",
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_token_refreshes_total", Help: "OAuth token requests of this worker, by outcome (needs_reauth: a person must sign the mailbox in again or fix its settings).",
		}, []string{"outcome"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_notifications_total", Help: "Notifications this worker sent, gave up (failed) or put back for a later attempt (retry).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fetcher_mailbox_run_duration_seconds", Help: "How long one mailbox's pass took, sending included.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
	}
	for vec, values := range map[*prometheus.CounterVec][]string{
		m.runs: runOutcomes, m.refreshes: refreshOutcomes, m.notifications: notificationOutcomes,
	} {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
	m.reg.MustRegister(m.runs, m.fetched, m.created, m.appended, m.refreshes, m.notifications, m.duration,
		&mailboxCollector{db: db, now: time.Now},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered, for the HTTP handler and
// tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// MailboxDone counts one mailbox's pass.
func (m *Metrics) MailboxDone(outcome string, run store.Run, took time.Duration) {
	if m.Heartbeat != nil {
		m.Heartbeat.Beat(time.Now())
	}
	m.runs.WithLabelValues(outcome).Inc()
	m.fetched.Add(float64(run.MessagesFetched))
	m.created.Add(float64(run.TicketsCreated))
	m.appended.Add(float64(run.MessagesAppended))
	m.duration.Observe(took.Seconds())
}

// TokenRefresh counts one token request.
func (m *Metrics) TokenRefresh(outcome string) { m.refreshes.WithLabelValues(outcome).Inc() }

// Notification counts one notification's outcome.
func (m *Metrics) Notification(outcome string) { m.notifications.WithLabelValues(outcome).Inc() }
