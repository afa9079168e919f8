package ops

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fetcherhq/fetcher/internal/store"
)

// scrapeTimeout bounds reading the mailboxes at a scrape: well inside
// Prometheus's default scrape timeout (10 s), so that a slow database
// costs the per-mailbox gauges, not the whole scrape.
const scrapeTimeout = 3 * time.Second

// statuses are the mailbox statuses each mailbox has a series for.
var statuses = []string{store.StatusActive, store.StatusFailing, store.StatusNeedsReauth}

// The per-mailbox gauges, labelled with the mailbox's name (an admin's
// label, unique): one series set per enabled mailbox.
var (
	databaseUpDesc = prometheus.NewDesc("fetcher_database_up",
		"1 when the mailboxes could be read from the database at this scrape, else 0 (and no per-mailbox gauge).", nil, nil)
	statusDesc = prometheus.NewDesc("fetcher_mailbox_status",
		"1 for the enabled mailbox's current status (active, failing, needs_reauth), 0 for the others.",
		[]string{"mailbox", "status"}, nil)
	lastSuccessDesc = prometheus.NewDesc("fetcher_mailbox_last_success_timestamp_seconds",
		"When the enabled mailbox was last fetched successfully, by any worker (Unix time); absent when never.",
		[]string{"mailbox"}, nil)
	sinceSuccessDesc = prometheus.NewDesc("fetcher_mailbox_seconds_since_last_success",
		"Seconds since the enabled mailbox was last fetched successfully, or since it was created when never.",
		[]string{"mailbox"}, nil)
	secretExpiryDesc = prometheus.NewDesc("fetcher_client_secret_expiry_timestamp_seconds",
		"When the enabled mailbox's client secret expires (client_secret_expires_at, Unix time); absent when not set.",
		[]string{"mailbox"}, nil)
)

// mailboxCollector reads the per-mailbox gauges from the database at each
// scrape: they describe the mailboxes, which every worker updates, not
// this process.
type mailboxCollector struct {
	db  *store.DB
	now func() time.Time
}

func (c *mailboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{databaseUpDesc, statusDesc, lastSuccessDesc, sinceSuccessDesc, secretExpiryDesc} {
		ch <- d
	}
}

func (c *mailboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	boxes, err := c.db.Mailboxes().List(ctx) // without secrets
	if err != nil {
		ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 1)
	now := c.now()
	for _, mb := range boxes {
		if mb.Enabled {
			collectMailbox(ch, mb, now)
		}
	}
}

func collectMailbox(ch chan<- prometheus.Metric, mb store.Mailbox, now time.Time) {
	// Label values must be valid UTF-8, or the client library refuses the
	// series; names and statuses are what admins wrote, and SQLite keeps
	// any bytes.
	name := strings.ToValidUTF8(mb.Name, "\uFFFD")
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		for i := range labels {
			labels[i] = strings.ToValidUTF8(labels[i], "\uFFFD")
		}
		m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
		if err == nil {
			ch <- m
		}
	}
	for _, s := range statuses {
		gauge(statusDesc, boolValue(mb.Status == s), s)
	}
	if !slices.Contains(statuses, mb.Status) {
		gauge(statusDesc, 1, mb.Status) // a value an admin wrote by hand: shown, not hidden
	}
	if !mb.LastSuccessAt.IsZero() {
		gauge(lastSuccessDesc, unix(mb.LastSuccessAt))
	}
	if since, ok := sinceSuccess(mb); ok {
		gauge(sinceSuccessDesc, now.Sub(since).Seconds())
	}
	if !mb.ClientSecretExpiresAt.IsZero() {
		gauge(secretExpiryDesc, unix(mb.ClientSecretExpiresAt))
	}
}

// sinceSuccess is what a mailbox's age is counted from: its last success,
// or its creation when it never succeeded (so that a mailbox that never
// worked grows overdue like one that stopped).
func sinceSuccess(mb store.Mailbox) (time.Time, bool) {
	if !mb.LastSuccessAt.IsZero() {
		return mb.LastSuccessAt, true
	}
	return mb.CreatedAt, !mb.CreatedAt.IsZero()
}

func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
