package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestServiceEndpoints runs `fetcher run --listen` as a service, its
// database behind a proxy that can be cut: the metrics after a real pass,
// /healthz, and /readyz with the database up, down, back, and with a
// mailbox overdue.
func TestServiceEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	u, err := url.Parse(db.URL())
	require.NoError(t, err)
	proxy := storetest.StartProxy(t, u.Host)
	proxied, err := proxy.ProxyURL(db.URL())
	require.NoError(t, err)
	env, tokens, imapSrv := servers(t, db)
	env["DATABASE_URL"] = proxied
	env["FETCHER_INTERVAL"] = "10s" // a look for due mailboxes every second
	env["FETCHER_LISTEN"] = "127.0.0.1:0"
	good := tokens.IssueRefreshToken("app", "help@example.com")
	insertMailbox(t, db, "Help", "help@example.com", good, imapSrv, tokens)
	imapSrv.AddUser("help@example.com", "")
	for _, raw := range []string{
		"From: a@example.org\r\nSubject: Login fails\r\nMessage-ID: <q1@example.org>\r\n\r\nbody\r\n",
		"From: a@example.org\r\nSubject: Re: Login fails\r\nMessage-ID: <q2@example.org>\r\nIn-Reply-To: <q1@example.org>\r\n\r\nstill\r\n",
	} {
		_, err := imapSrv.Deliver("help@example.com", "INBOX", []byte(raw))
		require.NoError(t, err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errOut logtest.Buffer
	m := &Main{Stdout: &logtest.Buffer{}, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() { done <- m.Run(rctx, []string{"run"}) }()
	require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "pass done") },
		20*time.Second, 20*time.Millisecond, "the first pass: %s", &errOut)
	addr := regexp.MustCompile(`endpoints listening" addr=(\S+)`).FindStringSubmatch(errOut.String())
	require.NotNil(t, addr, "the bound address is logged: %s", &errOut)
	base := "http://" + addr[1]

	// The metrics after a pass: this worker's counters, and the mailbox's
	// gauges as the database has them.
	got := scrapeMetrics(t, base)
	for series, want := range map[string]float64{
		`fetcher_runs_total{outcome="ok"}`:                             1,
		`fetcher_runs_total{outcome="failed"}`:                         0,
		`fetcher_messages_fetched_total`:                               2,
		`fetcher_tickets_created_total`:                                1,
		`fetcher_messages_appended_total`:                              1,
		`fetcher_token_refreshes_total{outcome="ok"}`:                  1,
		`fetcher_mailbox_run_duration_seconds_count`:                   1,
		`fetcher_database_up`:                                          1,
		`fetcher_mailbox_status{mailbox="Help",status="active"}`:       1,
		`fetcher_mailbox_status{mailbox="Help",status="needs_reauth"}`: 0,
	} {
		require.Contains(t, got, series)
		require.InDelta(t, want, got[series], 1e-9, series)
	}
	last := got[`fetcher_mailbox_last_success_timestamp_seconds{mailbox="Help"}`]
	require.InDelta(t, float64(time.Now().Unix()), last, 60)
	require.Less(t, got[`fetcher_mailbox_seconds_since_last_success{mailbox="Help"}`], 60.0)
	requireGet(t, base+"/healthz", http.StatusOK, "ok")
	requireGet(t, base+"/readyz", http.StatusOK, "ok")

	// The database goes away: not ready, still alive; back: ready again.
	proxy.Down()
	requireGet(t, base+"/readyz", http.StatusServiceUnavailable, "the database does not answer")
	requireGet(t, base+"/healthz", http.StatusOK, "ok")
	require.Contains(t, scrapeMetrics(t, base), "fetcher_database_up")
	require.Zero(t, scrapeMetrics(t, base)["fetcher_database_up"])
	require.NoError(t, proxy.Up())
	require.Eventually(t, func() bool { return status(t, base+"/readyz") == http.StatusOK },
		20*time.Second, 100*time.Millisecond, "ready again once the database is back")

	// A mailbox added an hour ago that never worked is overdue, by name.
	require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret, refresh_token, authority_url, created_at)
		VALUES ('Stale', 'imap', ?, ?, true, 'stale@example.com', 'microsoft', 'contoso.onmicrosoft.com', 'app', 'app-secret', 'M.C512_BAY.0.U.-stale-token', ?, ?)`,
		imapSrv.Host(), imapSrv.Port(), tokens.URL(), time.Now().Add(-time.Hour).UTC()))
	requireGet(t, base+"/readyz", http.StatusServiceUnavailable, `mailbox "Stale"`)
	require.Eventually(t, func() bool {
		got := scrapeMetrics(t, base)
		return got[`fetcher_mailbox_status{mailbox="Stale",status="needs_reauth"}`] == 1 &&
			got[`fetcher_token_refreshes_total{outcome="needs_reauth"}`] == 1 && got[`fetcher_runs_total{outcome="failed"}`] == 1
	}, 20*time.Second, 100*time.Millisecond, "the refused token is counted and the mailbox's status shown")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
	resp, err := http.Get(base + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "the endpoints stop with the loop")
	for _, secret := range []string{"app-secret", good, "stale-token"} {
		require.NotContains(t, errOut.String(), secret)
	}
}

// TestRunOnceDoesNotListen: a cron job sharing the service's settings
// serves nothing.
func TestRunOnceDoesNotListen(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, _, _ := servers(t, db)
	env["FETCHER_LISTEN"] = "127.0.0.1:0"
	r := runMain(t, context.Background(), env, "run", "--once")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stderr, "listening")
}

// TestListenAddressInUse: a port taken stops the start, naming the
// setting, rather than run unwatched.
func TestListenAddressInUse(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	env, _, _ := servers(t, db)
	busy := startIdleListener(t)
	r := runMain(t, context.Background(), env, "run", "--listen", busy)
	require.Equal(t, exitFailed, r.code, r.stderr)
	require.Contains(t, r.stderr, "FETCHER_LISTEN / --listen")
}

func startIdleListener(t *testing.T) string {
	t.Helper()
	srv := &http.Server{ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func status(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func requireGet(t *testing.T, u string, code int, body string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, code, resp.StatusCode, "%s: %s", u, b)
	require.Contains(t, string(b), body)
}

// scrapeMetrics returns the samples of /metrics by series
// ("name{labels}").
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
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
	require.NoError(t, sc.Err())
	return out
}
