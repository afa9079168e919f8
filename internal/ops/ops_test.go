package ops_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/ops"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// addMailbox inserts an enabled mailbox with the given status and last
// success (zero: never).
func addMailbox(t *testing.T, db *store.DB, name, status string, lastSuccess time.Time, enabled bool) {
	t.Helper()
	ctx := context.Background()
	mb := store.Mailbox{
		Name: name, Protocol: "imap", Host: "imap.example.com", Port: 993, UseSSL: true,
		Username: name + "@example.com", OAuthProvider: "microsoft", ClientID: "client",
		ClientSecret: "very-secret-value", RefreshToken: "rt-secret-value", Enabled: enabled, Status: status,
	}
	require.NoError(t, db.Mailboxes().Create(ctx, &mb))
	if !lastSuccess.IsZero() {
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET last_success_at = ? WHERE id = ?", lastSuccess.UTC(), mb.ID))
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// scrape returns the samples of /metrics by series ("name{labels}").
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

func serve(t *testing.T, db *store.DB, maxAge time.Duration) (*ops.Metrics, string) {
	t.Helper()
	m := ops.NewMetrics(db)
	srv := httptest.NewServer(ops.Handler(m, &ops.Health{DB: db, MaxAge: maxAge}))
	t.Cleanup(srv.Close)
	return m, srv.URL
}

func TestMailboxGaugesComeFromTheDatabase(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		success := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		addMailbox(t, db, "Support", store.StatusActive, success, true)
		addMailbox(t, db, "Sales", store.StatusNeedsReauth, time.Time{}, true)
		addMailbox(t, db, "Archive", store.StatusFailing, success, false)
		expiry := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
		require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET client_secret_expires_at = ? WHERE name = 'Support'", expiry))
		_, base := serve(t, db, time.Hour)

		got := scrape(t, base)
		want := map[string]float64{
			`fetcher_database_up`: 1,
			`fetcher_mailbox_status{mailbox="Support",status="active"}`:         1,
			`fetcher_mailbox_status{mailbox="Support",status="failing"}`:        0,
			`fetcher_mailbox_status{mailbox="Support",status="needs_reauth"}`:   0,
			`fetcher_mailbox_status{mailbox="Sales",status="active"}`:           0,
			`fetcher_mailbox_status{mailbox="Sales",status="needs_reauth"}`:     1,
			`fetcher_mailbox_last_success_timestamp_seconds{mailbox="Support"}`: float64(success.Unix()),
			`fetcher_client_secret_expiry_timestamp_seconds{mailbox="Support"}`: float64(expiry.Unix()),
			`fetcher_runs_total{outcome="failed"}`:                              0,
			`fetcher_token_refreshes_total{outcome="needs_reauth"}`:             0,
			`fetcher_notifications_total{outcome="retry"}`:                      0,
		}
		for series, v := range want {
			require.Contains(t, got, series)
			require.InDelta(t, v, got[series], 1e-9, series)
		}
		require.Greater(t, got[`fetcher_mailbox_seconds_since_last_success{mailbox="Support"}`], time.Since(success).Seconds()-60)
		require.Less(t, got[`fetcher_mailbox_seconds_since_last_success{mailbox="Sales"}`], 600.0,
			"a mailbox that never succeeded counts from its creation")
		require.NotContains(t, got, `fetcher_mailbox_last_success_timestamp_seconds{mailbox="Sales"}`)
		for series := range got {
			require.NotContains(t, series, "Archive", "disabled mailboxes have no series")
		}
		_, body := get(t, base+"/metrics")
		require.NotContains(t, body, "secret-value")

		require.NoError(t, db.Close())
		got = scrape(t, base)
		require.Contains(t, got, "fetcher_database_up")
		require.Zero(t, got["fetcher_database_up"], "the counters are served without the database")
		require.NotContains(t, got, `fetcher_mailbox_status{mailbox="Support",status="active"}`)
	})
}

func TestCountersFollowTheRunner(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	m, base := serve(t, db, time.Hour)
	m.MailboxDone("ok", store.Run{MessagesFetched: 3, TicketsCreated: 2, MessagesAppended: 1}, 1500*time.Millisecond)
	m.MailboxDone("interrupted", store.Run{MessagesFetched: 1, TicketsCreated: 1}, 200*time.Millisecond)
	m.TokenRefresh("ok")
	m.TokenRefresh("needs_reauth")
	m.Notification("sent")
	m.Notification("sent")
	m.Notification("retry")
	got := scrape(t, base)
	for series, v := range map[string]float64{
		`fetcher_runs_total{outcome="ok"}`:                      1,
		`fetcher_runs_total{outcome="interrupted"}`:             1,
		`fetcher_runs_total{outcome="failed"}`:                  0,
		`fetcher_messages_fetched_total`:                        4,
		`fetcher_tickets_created_total`:                         3,
		`fetcher_messages_appended_total`:                       1,
		`fetcher_token_refreshes_total{outcome="ok"}`:           1,
		`fetcher_token_refreshes_total{outcome="needs_reauth"}`: 1,
		`fetcher_token_refreshes_total{outcome="error"}`:        0,
		`fetcher_notifications_total{outcome="sent"}`:           2,
		`fetcher_notifications_total{outcome="retry"}`:          1,
		`fetcher_mailbox_run_duration_seconds_count`:            2,
		`fetcher_mailbox_run_duration_seconds_bucket{le="1"}`:   1,
		`fetcher_mailbox_run_duration_seconds_bucket{le="2.5"}`: 2,
		`fetcher_mailbox_run_duration_seconds_sum`:              1.7,
	} {
		require.InDelta(t, v, got[series], 1e-9, series)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		_, base := serve(t, db, time.Hour)
		code, body := get(t, base+"/readyz")
		require.Equal(t, http.StatusOK, code, body)

		addMailbox(t, db, "Fresh", store.StatusActive, time.Now().Add(-10*time.Minute), true)
		addMailbox(t, db, "New", store.StatusActive, time.Time{}, true) // created now, not yet fetched
		addMailbox(t, db, "Off", store.StatusFailing, time.Now().Add(-48*time.Hour), false)
		code, body = get(t, base+"/readyz")
		require.Equal(t, http.StatusOK, code, "recent, new and disabled mailboxes are not overdue: %s", body)
		require.Equal(t, "ok\n", body)

		addMailbox(t, db, "Parked", store.StatusNeedsReauth, time.Now().Add(-2*time.Hour), true)
		code, body = get(t, base+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, `mailbox "Parked": status needs_reauth, last success`)
		require.Contains(t, body, "1 mailboxes without a successful pass for more than 1h0m0s")
		require.NotContains(t, body, "Fresh")
		require.NotContains(t, body, "Off")

		code, body = get(t, base+"/healthz")
		require.Equal(t, http.StatusOK, code, "an overdue mailbox is no reason to restart the worker")
		require.Equal(t, "ok\n", body)

		require.NoError(t, db.Close())
		code, body = get(t, base+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "the database does not answer")
	})
}

// TestScrapeSurvivesABadMailboxName: a name that is not valid UTF-8
// (SQLite keeps any bytes) must not make the client library panic, which
// would kill the worker at every scrape.
func TestScrapeSurvivesABadMailboxName(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	addMailbox(t, db, "Support", store.StatusActive, time.Now(), true)
	require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET name = CAST(X'ff6f' AS TEXT)"))
	_, base := serve(t, db, time.Hour)
	got := scrape(t, base)
	require.Contains(t, got, "fetcher_mailbox_status{mailbox=\"\uFFFDo\",status=\"active\"}")
}

func TestHealthzFailsWhenTheLoopHangs(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	beat := &ops.Heartbeat{}
	m := ops.NewMetrics(db)
	m.Heartbeat = beat
	h := &ops.Health{DB: db, MaxAge: time.Hour, Heartbeat: beat, MaxSilence: 25 * time.Minute}
	srv := httptest.NewServer(ops.Handler(m, h))
	t.Cleanup(srv.Close)

	code, _ := get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code, "no pass yet: starting up")
	beat.Beat(time.Now().Add(-10 * time.Minute))
	code, _ = get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code, "a long pass is still alive")
	beat.Beat(time.Now().Add(-26 * time.Minute))
	code, body := get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "a pass hangs")

	// A mailbox finishing its part is a sign of life.
	m.MailboxDone("ok", store.Run{}, time.Second)
	code, _ = get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code)
}
