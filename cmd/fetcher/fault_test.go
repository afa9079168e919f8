package main

// Fault injection against the real fetcher process (issue 6): whatever
// happens to the process, its database, its token endpoint or its mail
// server, every delivered message ends up stored exactly once, byte for
// byte, and the server is left as after_fetch says. See
// docs/decisions/0003-exactly-once.md for the design being tested.

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestSIGKILLLosesNothing kills `fetcher run --once` with SIGKILL at
// random moments, again and again, while mail keeps arriving, then lets
// one run finish: every message must be stored once, and the server must
// be left as after_fetch says. SIGKILL runs no deferred code, so this is
// the crash the ledger and the after-commit actions exist for.
func TestSIGKILLLosesNothing(t *testing.T) {
	t.Parallel()
	iterations := faultIterations(t, 25)
	for _, kind := range []string{"inproc", "dovecot"} {
		for _, tc := range []struct{ protocol, afterFetch string }{
			{"imap", "mark_seen"}, {"imap", "delete"}, {"pop3", "keep"}, {"pop3", "delete"},
		} {
			t.Run(kind+"/"+tc.protocol+"/"+tc.afterFetch, func(t *testing.T) {
				t.Parallel()
				sigkillCase(t, kind, tc.protocol, tc.afterFetch, iterations)
			})
		}
	}
}

// initialBatch is the mail waiting before the first run: enough that a
// run spends most of its time storing, so kills land mid-store.
const initialBatch = 40

func sigkillCase(t *testing.T, kind, protocol, afterFetch string, iterations int) {
	began := time.Now()
	rng := faultRand(t)
	db := storetest.Postgres(t)
	pg := pgConn(t, db)
	tokens := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", "app-secret")
	const user, calibUser = "support@example.com", "calibrate@example.com"
	fs := startFaultServer(t, kind, protocol, tokens, user, calibUser)
	env := faultEnv(t, db.URL(), fs.caPEM)

	// How long does an unkilled run take here (race detector, a loaded CI
	// machine): one with nothing to fetch, and one over the initial batch?
	// Each kill delay is spread over the expected length of that run, from
	// the mail still waiting, so kills land in every phase: start-up,
	// login, storing, actions.
	for i := range initialBatch {
		fs.deliver(calibUser, faultMail(rng, "calibrate", i).raw)
	}
	calib := addFaultMailbox(t, db, "Calibration", calibUser, fs, tokens, afterFetch)
	full, empty := timedRun(t, env), timedRun(t, env)
	perMessage := max(full-empty, 0) / initialBatch
	require.NoError(t, db.Exec(context.Background(), "UPDATE mailboxes SET enabled = false WHERE id = ?", calib))

	delivered := map[string]sent{}
	next := 0
	deliver := func(n int) {
		for range n {
			m := faultMail(rng, "kill", next)
			next++
			fs.deliver(user, m.raw)
			delivered[m.id] = m
		}
	}
	deliver(initialBatch)
	id := addFaultMailbox(t, db, "Support", user, fs, tokens, afterFetch)

	phases := map[string]int{}
	kills := 0
	for i := range iterations {
		if i > 0 && rng.IntN(2) == 0 {
			deliver(2 + rng.IntN(7)) // mail keeps arriving between crashes
		}
		fs.quiet()
		readyForNextRun(t, pg, id)
		before := progressOf(t, pg, id)
		expected := empty + time.Duration(int64(len(delivered))-before.rows)*perMessage
		delay := time.Duration(rng.Int64N(int64(expected)*6/5 + 1))
		killed, code, out := runKilled(t, env, delay)
		after := progressOf(t, pg, id)
		require.Zero(t, after.doubled, "iteration %d (kill after %s): a Message-ID is stored twice\n%s", i, delay, tail(out))
		requireNothingLost(t, pg, id, fs, user, delivered, fmt.Sprintf("iteration %d (kill after %s)", i, delay))
		if killed {
			kills++
		} else if code != exitOK {
			// A run after any number of crashes must succeed by itself.
			t.Errorf("iteration %d: a run that was not killed failed with exit %d:\n%s", i, code, tail(out))
		}
		phases[phase(killed, out, before, after, int64(len(delivered)))]++
	}

	fs.quiet()
	readyForNextRun(t, pg, id)
	code, out := runFetcher(t, env)
	require.Equal(t, exitOK, code, "the clean run after the kills:\n%s", tail(out))
	// One more pass: nothing is left to fetch, and a POP3 delete counts as
	// done only once a later listing no longer holds the message.
	fs.quiet()
	code, out = runFetcher(t, env)
	require.Equal(t, exitOK, code, "the confirming run:\n%s", tail(out))
	require.Contains(t, out, "0 messages fetched", "the confirming run found mail the clean run left")

	requireExactlyOnce(t, pg, id, delivered)
	requireServerState(t, fs, user, afterFetch, delivered)

	t.Logf("%d iterations, %d killed, %d messages delivered; an unkilled run took %s with nothing to fetch, %s over %d messages; whole case %s",
		iterations, kills, len(delivered), empty.Round(time.Millisecond), full.Round(time.Millisecond), initialBatch,
		time.Since(began).Round(time.Millisecond))
	for _, p := range slices.Sorted(maps.Keys(phases)) {
		t.Logf("  %3d × %s", phases[p], p)
	}
}

// requireNothingLost checks the invariant that holds at every instant,
// crash or not: each delivered message is stored, or still on the server,
// or both; never neither (deleted before its rows were committed).
func requireNothingLost(t *testing.T, pg *pgx.Conn, id int64, fs *faultServer, user string, delivered map[string]sent, when string) {
	t.Helper()
	rows, err := pg.Query(context.Background(), "SELECT coalesce(message_id, '') FROM ticket_messages WHERE mailbox_id = $1", id)
	require.NoError(t, err)
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	onServer := fs.onServer(user)
	var lost []string
	for mid := range delivered {
		if _, there := onServer[mid]; !there && !slices.Contains(stored, mid) {
			lost = append(lost, mid)
		}
	}
	require.Empty(t, lost, "%s: messages neither stored nor on the server any more", when)
}

// timedRun runs the fetcher to its end, requiring success, and returns how
// long it took.
func timedRun(t *testing.T, env map[string]string) time.Duration {
	t.Helper()
	start := time.Now()
	code, out := runFetcher(t, env)
	require.Equal(t, exitOK, code, "calibration run:\n%s", tail(out))
	return time.Since(start)
}

// progress is how far a mailbox is, read between runs.
type progress struct {
	rows    int64 // ticket_messages
	owed    int64 // stored, after-fetch action not yet confirmed
	doubled int64 // rows whose Message-ID is stored more than once
}

func progressOf(t *testing.T, pg *pgx.Conn, id int64) progress {
	t.Helper()
	var p progress
	require.NoError(t, pg.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1),
		(SELECT count(*) FROM fetched_messages WHERE mailbox_id = $1 AND action_done_at IS NULL),
		(SELECT count(*) - count(DISTINCT message_id) FROM ticket_messages WHERE mailbox_id = $1)`, id).
		Scan(&p.rows, &p.owed, &p.doubled))
	return p
}

// phase names where a kill landed, judged from the process's log and the
// rows before and after it; waiting is the number of messages delivered.
func phase(killed bool, out string, before, after progress, waiting int64) string {
	switch {
	case !killed:
		return "run ended before the kill"
	case !strings.Contains(out, "database opened"):
		return "killed starting up, before the database was opened"
	case after.rows == before.rows && after.owed == before.owed:
		return "killed before anything was committed (token, login, listing, first fetch)"
	case after.rows == before.rows:
		return "killed after settling actions owed by an earlier run, nothing new stored"
	case after.rows < waiting:
		return "killed mid-store: some of the waiting mail committed"
	case after.owed > 0:
		return "killed after storing all mail, before its after-fetch actions were confirmed"
	default:
		return "killed after storing all mail and applying its actions"
	}
}

// TestDatabaseGoesAwayMidRun cuts the fetcher's database connections in the
// middle of a run and refuses new ones for two seconds, through a TCP proxy:
// the messages committed before stay, the one in flight rolls back and is
// fetched again, and nothing is stored twice.
func TestDatabaseGoesAwayMidRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := faultRand(t)
	db := storetest.Postgres(t)
	pg := pgConn(t, db) // direct, not through the proxy
	u, err := url.Parse(db.URL())
	require.NoError(t, err)
	proxy := storetest.StartProxy(t, u.Host)
	proxied, err := proxy.ProxyURL(db.URL())
	require.NoError(t, err)

	tokens := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", "app-secret")
	const user = "support@example.com"
	fs := startFaultServer(t, "inproc", "imap", tokens, user)
	env := faultEnv(t, proxied, fs.caPEM)
	id := addFaultMailbox(t, db, "Support", user, fs, tokens, "mark_seen")
	// Enough mail that the run is still storing when the cut comes: it
	// commits up to store.MaxBatch messages at a time.
	const total = 1000
	delivered := map[string]sent{}
	for i := range total {
		m := faultMail(rng, "dbdown", i)
		fs.deliver(user, m.raw)
		delivered[m.id] = m
	}

	cmd, out := fetcherProcess(t, env, "run", "--once")
	done := make(chan error, 1)
	var exited atomic.Int64 // unix nanoseconds
	go func() {
		err := cmd.Wait()
		exited.Store(time.Now().UnixNano())
		done <- err
	}()
	var atCut int64
	for atCut < 5 {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before the database was cut; deliver more mail:\n%s", err, tail(out.String()))
		case <-time.After(2 * time.Millisecond):
		}
		atCut = pgInt(t, pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id)
	}
	require.Less(t, atCut, int64(total), "the run stored everything before the cut")
	proxy.Down()
	cutAt := time.Now()
	time.Sleep(2 * time.Second)
	require.NoError(t, proxy.Up())
	var code int
	select {
	case err := <-done:
		code = exitCode(t, err)
	case <-time.After(processTimeout):
		_ = cmd.Process.Kill()
		t.Fatalf("the fetcher hung after its database went away:\n%s", tail(out.String()))
	}
	t.Logf("database cut with %d of %d messages stored; the fetcher exited %d, %s after the cut; its log ends:\n%s",
		atCut, total, code, time.Unix(0, exited.Load()).Sub(cutAt).Round(time.Millisecond), tail(out.String()))
	require.Equal(t, exitFailed, code, "a pass whose database went away failed")

	after := readMailbox(t, pg, id)
	var runErr *string
	var finished *time.Time
	require.NoError(t, pg.QueryRow(ctx, "SELECT error, finished_at FROM fetch_runs WHERE mailbox_id = $1 ORDER BY id DESC LIMIT 1", id).Scan(&runErr, &finished))
	t.Logf("after the failed run: status=%q last_error=%q next_attempt_at=%v lease=%q; fetch_runs: finished_at=%v error=%q; %d rows stored",
		after.Status, after.LastError, after.NextAttemptAt, leaseOf(t, pg, id), finished, deref(runErr),
		pgInt(t, pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id))
	require.Zero(t, progressOf(t, pg, id).doubled)
	// An admin must be able to see that this mailbox's run failed, and
	// why: the database is back well within the 30 s the fetcher gives
	// itself to record the outcome. (Not fatal: the exactly-once checks
	// below still run.)
	assert.Equal(t, store.StatusFailing, after.Status, "mailboxes.status after a run whose database went away")
	assert.NotEmpty(t, after.LastError, "mailboxes.last_error after a run whose database went away")
	assert.NotNil(t, finished, "fetch_runs.finished_at of the failed run")
	assert.NotEmpty(t, deref(runErr), "fetch_runs.error of the failed run")

	readyForNextRun(t, pg, id)
	code, outs := runFetcher(t, env)
	require.Equal(t, exitOK, code, "the run after the database came back:\n%s", tail(outs))
	requireExactlyOnce(t, pg, id, delivered)
	requireServerState(t, fs, user, "mark_seen", delivered)
	ok := readMailbox(t, pg, id)
	require.Equal(t, store.StatusActive, ok.Status)
	require.Empty(t, ok.LastError)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestTokenEndpoint503ForAWhile: the token endpoint answers 503 with
// Retry-After to the first requests. Each failed run must keep the stored
// refresh token (the provider rotated nothing), back the mailbox off for at
// least Retry-After, not ask again while backing off, and once the endpoint
// recovers fetch every message once. The endpoint is strict: a refresh token
// used twice revokes the whole family, so a lost rotation would show.
func TestTokenEndpoint503ForAWhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := faultRand(t)
	db := storetest.Postgres(t)
	pg := pgConn(t, db)
	tokens := oauthtest.NewServer(oauthtest.Options{Strict: true})
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", "app-secret")
	const user = "support@example.com"
	fs := startFaultServer(t, "inproc", "imap", tokens, user)
	env := faultEnv(t, db.URL(), fs.caPEM)
	id := addFaultMailbox(t, db, "Support", user, fs, tokens, "mark_seen")
	original := readMailbox(t, pg, id).RefreshToken

	delivered := map[string]sent{}
	next := 0
	deliver := func(n int) {
		for range n {
			m := faultMail(rng, "tok503", next)
			next++
			fs.deliver(user, m.raw)
			delivered[m.id] = m
		}
	}
	deliver(5)

	const outage = 3
	const retryAfter = 2 * time.Minute // longer than the first backoffs, so it must win
	for range outage {
		f := oauthtest.Unavailable()
		f.RetryAfter = retryAfter
		tokens.FailNext(f)
	}
	for i := 1; i <= outage; i++ {
		start := time.Now()
		code, out := runFetcher(t, env)
		require.Equal(t, exitFailed, code, "run %d against a 503:\n%s", i, tail(out))
		s := readMailbox(t, pg, id)
		t.Logf("run %d: status=%q next_attempt_at in %s, consecutive_failures=%d, last_error=%q",
			i, s.Status, s.NextAttemptAt.Sub(start).Round(time.Second), s.ConsecutiveFailures, s.LastError)
		require.Equal(t, store.StatusFailing, s.Status, "a provider outage is retried, not a reauthorization")
		require.Contains(t, s.LastError, "503")
		require.Equal(t, int64(i), s.ConsecutiveFailures)
		require.NotNil(t, s.NextAttemptAt, "a failing mailbox backs off")
		require.Greater(t, s.NextAttemptAt.Sub(start), retryAfter-10*time.Second, "the provider's Retry-After is respected")
		require.Equal(t, original, s.RefreshToken, "a failed refresh must leave the stored refresh token alone")
		require.Equal(t, i, tokens.Requests())
		require.Zero(t, pgInt(t, pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", id))

		if i == 1 {
			// While backing off, a run leaves the mailbox (and the
			// struggling endpoint) alone.
			code, out := runFetcher(t, env)
			require.Equal(t, exitFailed, code, "a mailbox backing off is reported:\n%s", tail(out))
			require.Contains(t, out, "backing off")
			require.Equal(t, i, tokens.Requests(), "no token request while backing off")
		}
		deliver(2)
		// Time passes: the backoff is over.
		readyForNextRun(t, pg, id)
	}

	code, out := runFetcher(t, env)
	require.Equal(t, exitOK, code, "the run after the endpoint recovered:\n%s", tail(out))
	s := readMailbox(t, pg, id)
	require.Equal(t, store.StatusActive, s.Status)
	require.Empty(t, s.LastError)
	require.Nil(t, s.NextAttemptAt)
	require.Zero(t, s.ConsecutiveFailures)
	require.NotEqual(t, original, s.RefreshToken, "the rotated refresh token is stored")

	// The rotated token is the live one: a forced refresh with it works
	// (a strict endpoint would revoke everything if an old one were sent).
	deliver(1)
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET access_token = NULL WHERE id = ?", id))
	code, out = runFetcher(t, env)
	require.Equal(t, exitOK, code, "a refresh with the stored token:\n%s", tail(out))
	require.Equal(t, outage+2, tokens.Requests())
	requireExactlyOnce(t, pg, id, delivered)
	requireServerState(t, fs, user, "mark_seen", delivered)
}

// TestServerStallsMidLiteral: an IMAP server sends half a message and then
// nothing, keeping the connection open. The pass must end within a bound,
// the mailbox must say what went wrong, another mailbox on the same server
// must still be fetched, and the next pass, with the server well again,
// must store every message once.
func TestServerStallsMidLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		// nth is the message body the server stalls in (1 = the first);
		// the ones before it are stored in the stalled pass.
		nth      int64
		bound    time.Duration
		wantErrs []string
	}{
		// The command timeout ends the stall: the read deadline, extended
		// by every byte, expires mid-literal.
		{"command timeout", map[string]string{"FETCHER_COMMAND_TIMEOUT": "500ms"}, 2, 30 * time.Second,
			[]string{"read message UID 2", "timeout"}},
		// With the default command timeout (60 s), a shorter mailbox
		// timeout ends it.
		{"mailbox timeout", map[string]string{"FETCHER_MAILBOX_TIMEOUT": "3s"}, 1, 45 * time.Second,
			[]string{"FETCHER_MAILBOX_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := startStalling(t, tt.nth)
			env := faultEnv(t, st.db.URL(), st.srv.Cert.PEM)
			maps.Copy(env, tt.env)
			start := time.Now()
			code, out := runFetcher(t, env)
			took := time.Since(start)
			t.Logf("the stalled pass took %s (%v); fetcher log:\n%s", took.Round(time.Millisecond), tt.env, tail(out))
			require.Equal(t, exitFailed, code, "a stalled mailbox fails the pass")
			require.Less(t, took, tt.bound, "the stall must not hold the pass beyond its timeout")
			stalled := st.afterStall(t, tt.nth-1)
			for _, want := range tt.wantErrs {
				require.Contains(t, stalled.LastError, want)
			}

			st.stalling.Store(false)
			readyForNextRun(t, st.pg, st.stallID, st.okID)
			code, out = runFetcher(t, env)
			require.Equal(t, exitOK, code, "the pass after the server recovered:\n%s", tail(out))
			st.requireAllOnce(t)
		})
	}
}

// stallSetup is an IMAP server with two users on it: one whose messages
// the server stalls on while stalling is set, one it serves normally.
type stallSetup struct {
	db              *store.DB
	pg              *pgx.Conn
	srv             *mailboxtest.IMAPServer
	stalling        atomic.Bool
	literals        atomic.Int64
	stallID, okID   int64
	stallMail, okML map[string]sent
}

const stallUser, okUser = "stalls@example.com", "healthy@example.com"

// startStalling makes the server stall on the nth message body it sends to
// stallUser (counting from 1) while stalling is set.
func startStalling(t *testing.T, nth int64) *stallSetup {
	t.Helper()
	rng := faultRand(t)
	st := &stallSetup{db: storetest.Postgres(t), stallMail: map[string]sent{}, okML: map[string]sent{}}
	st.pg = pgConn(t, st.db)
	st.stalling.Store(true)
	tokens := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(tokens.Close)
	tokens.AddClient("app", "app-secret")
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{
		CheckToken: func(u, tok string) bool {
			got, ok := tokens.AccessTokenUser(tok)
			return ok && got == u
		},
		StallMidLiteral: func(u string) bool {
			return u == stallUser && st.stalling.Load() && st.literals.Add(1) == nth
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	st.srv = srv
	fs := &faultServer{protocol: "imap", host: srv.Host(), port: srv.Port()}
	for _, u := range []string{stallUser, okUser} {
		srv.AddUser(u, faultPassword)
	}
	// The stalling mailbox comes first, so the healthy one is fetched
	// while (or after) the other hangs.
	st.stallID = addFaultMailbox(t, st.db, "Stalls", stallUser, fs, tokens, "mark_seen")
	st.okID = addFaultMailbox(t, st.db, "Healthy", okUser, fs, tokens, "mark_seen")
	for i := range 3 {
		for _, to := range []struct {
			user string
			into map[string]sent
		}{{stallUser, st.stallMail}, {okUser, st.okML}} {
			m := faultMail(rng, strings.Split(to.user, "@")[0], i)
			_, err := srv.Deliver(to.user, "INBOX", m.raw)
			require.NoError(t, err)
			to.into[m.id] = m
		}
	}
	return st
}

// afterStall checks the stalled pass's outcome: the healthy mailbox fully
// stored, the stalled one with stored messages kept, failing, and saying
// so; it returns the stalled mailbox's row.
func (st *stallSetup) afterStall(t *testing.T, stored int64) mailboxState {
	t.Helper()
	requireExactlyOnce(t, st.pg, st.okID, st.okML)
	s := readMailbox(t, st.pg, st.stallID)
	t.Logf("stalled mailbox: status=%q last_error=%q", s.Status, s.LastError)
	require.Equal(t, stored, pgInt(t, st.pg, "SELECT count(*) FROM ticket_messages WHERE mailbox_id = $1", st.stallID))
	require.Equal(t, store.StatusFailing, s.Status)
	require.NotEmpty(t, s.LastError)
	return s
}

func (st *stallSetup) requireAllOnce(t *testing.T) {
	t.Helper()
	requireExactlyOnce(t, st.pg, st.stallID, st.stallMail)
	requireExactlyOnce(t, st.pg, st.okID, st.okML)
	fs := &faultServer{onServer: func(u string) map[string]bool { return imapState(t, st.srv.Addr, st.srv.Cert.Pool, u) }}
	requireServerState(t, fs, stallUser, "mark_seen", st.stallMail)
	requireServerState(t, fs, okUser, "mark_seen", st.okML)
	require.Equal(t, store.StatusActive, readMailbox(t, st.pg, st.stallID).Status)
}
