package main

// Helpers of the fault-injection tests (fault_test.go): mail to deliver, mail
// servers to deliver it to and look at afterwards, fetcher processes to start
// and kill, and the exactly-once check of the database.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store"
)

// faultPassword lets the tests log in to look at a mailbox; the fetcher
// itself always logs in with XOAUTH2.
const faultPassword = "look-only"

// Environment knobs of the fault tests.
const (
	// faultIterationsEnv raises (or lowers) the number of kills per case;
	// the default keeps the tests within about a minute on 2 cores.
	faultIterationsEnv = "FETCHER_FAULT_ITERATIONS"
	// faultSeedEnv replays a run with another seed; the seed in use is
	// logged, so a failure can be reproduced.
	faultSeedEnv = "FETCHER_FAULT_SEED"
)

func faultIterations(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv(faultIterationsEnv)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q", faultIterationsEnv, v)
	return n
}

// faultRand is a deterministic generator for one test case: the same seed
// (FETCHER_FAULT_SEED, default 6) and case name give the same mail, kill
// delays and deliveries.
func faultRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(6)
	if v := os.Getenv(faultSeedEnv); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "%s=%q", faultSeedEnv, v)
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	t.Logf("seed %d (%s); case stream %x", seed, faultSeedEnv, h.Sum64())
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// sent is a message as delivered to the server.
type sent struct {
	id          string // Message-ID, with its angle brackets, as stored
	raw         []byte
	attachments int
}

// faultMail builds message n of a test: 5 to 30 KB, a unique Message-ID and
// subject, every third one with an attachment, and lines starting with a
// dot (which POP3 must un-stuff).
func faultMail(rng *rand.Rand, tag string, n int) sent {
	id := fmt.Sprintf("<%s.%d@fault.example>", tag, n)
	size := 5<<10 + rng.IntN(25<<10)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\n", n, n)
	fmt.Fprintf(&b, "Subject: %s question %d\r\nMessage-ID: %s\r\n", tag, n, id)
	fmt.Fprintf(&b, "Date: Mon, 16 Nov 2026 %02d:%02d:%02d +0100\r\nMIME-Version: 1.0\r\n", 8+n/3600%10, n/60%60, n%60)
	s := sent{id: id}
	if n%3 != 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
		writeText(&b, rng, size-b.Len())
		s.raw = b.Bytes()
		return s
	}
	boundary := fmt.Sprintf("=_fault_%d", n)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	writeText(&b, rng, 1<<10)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/octet-stream; name=\"report-%d.bin\"\r\n", boundary, n)
	fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"report-%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", n)
	data := make([]byte, max(size-b.Len(), 1<<10)*3/4)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	s.raw, s.attachments = b.Bytes(), 1
	return s
}

var faultWords = strings.Fields("the printer on floor three prints only blank pages since the update " +
	"please help me reset my password my invoice shows the wrong amount ticket urgent Grüße")

// writeText writes about n bytes of text lines, ending in CRLF.
func writeText(b *bytes.Buffer, rng *rand.Rand, n int) {
	start := b.Len()
	for b.Len()-start < n {
		line := make([]string, 3+rng.IntN(12))
		for i := range line {
			line[i] = faultWords[rng.IntN(len(faultWords))]
		}
		if rng.IntN(15) == 0 {
			b.WriteString(".") // dot-stuffed on the POP3 wire
		}
		b.WriteString(strings.Join(line, " ") + "\r\n")
	}
}

// faultServer is a mail server a test delivers to and inspects: the
// in-process IMAP or POP3 server, or a real Dovecot.
type faultServer struct {
	kind, protocol string
	host           string
	port           int
	caPEM          []byte
	deliver        func(user string, raw []byte)
	// onServer returns the Message-IDs in user's INBOX, each with whether
	// it is flagged \Seen (always false for POP3 maildrops).
	onServer func(user string) map[string]bool
	// quiet waits until the server has let go of every session, so that a
	// session of a killed process does not hold a POP3 maildrop lock into
	// the next run (a real client would get [IN-USE] and back off).
	quiet func()
}

// startFaultServer starts a mail server of kind "inproc" or "dovecot" for
// protocol, with users who log in with tokens from tokens (and, to be
// inspected, with faultPassword).
func startFaultServer(t *testing.T, kind, protocol string, tokens *oauthtest.Server, users ...string) *faultServer {
	t.Helper()
	check := func(u, tok string) bool {
		got, ok := tokens.AccessTokenUser(tok)
		return ok && got == u
	}
	fs := &faultServer{kind: kind, protocol: protocol, host: "127.0.0.1", quiet: func() {}}
	switch {
	case kind == "dovecot":
		pw := map[string]string{}
		for _, u := range users {
			pw[u] = faultPassword
		}
		d := mailboxtest.DovecotForTest(t, tokens.AccessTokenUser, pw)
		fs.caPEM = d.Cert.PEM
		fs.port = d.Ports["imaps"]
		if protocol == "pop3" {
			fs.port = d.Ports["pop3s"]
		}
		fs.deliver = func(u string, raw []byte) { require.NoError(t, d.Deliver(u, raw)) }
		fs.onServer = func(u string) map[string]bool { return imapState(t, d.Addr("imaps"), d.Cert.Pool, u) }
	case protocol == "imap":
		srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{CheckToken: check})
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Close() })
		for _, u := range users {
			srv.AddUser(u, faultPassword)
		}
		fs.caPEM, fs.port = srv.Cert.PEM, srv.Port()
		fs.deliver = func(u string, raw []byte) {
			_, err := srv.Deliver(u, "INBOX", raw)
			require.NoError(t, err)
		}
		fs.onServer = func(u string) map[string]bool { return imapState(t, srv.Addr, srv.Cert.Pool, u) }
		fs.quiet = func() {
			// 30 s: with -race and every package's tests at once, a session
			// cut off mid-FETCH took over 10 s to notice once in CI.
			require.Eventually(t, func() bool { return srv.OpenConns() == 0 }, 30*time.Second, 5*time.Millisecond,
				"the IMAP server still holds a session of a killed fetcher")
		}
	default:
		srv, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{CheckToken: check, Pipelining: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Close() })
		for _, u := range users {
			srv.AddUser(u, faultPassword)
		}
		var mu sync.Mutex
		ids := map[string]string{} // UIDL → Message-ID
		fs.caPEM, fs.port = srv.Cert.PEM, srv.Port()
		fs.deliver = func(u string, raw []byte) {
			uidl, err := srv.Deliver(u, raw)
			require.NoError(t, err)
			mu.Lock()
			ids[uidl] = messageID(t, raw)
			mu.Unlock()
		}
		fs.onServer = func(u string) map[string]bool {
			mu.Lock()
			defer mu.Unlock()
			out := map[string]bool{}
			for _, uidl := range srv.Messages(u) {
				out[ids[uidl]] = false
			}
			return out
		}
		fs.quiet = func() {
			require.Eventually(t, func() bool { return srv.OpenConns() == 0 }, 30*time.Second, 5*time.Millisecond,
				"the POP3 server still holds a session of a killed fetcher")
		}
	}
	return fs
}

// imapState looks at user's INBOX read-only (EXAMINE, BODY.PEEK): the
// Message-IDs there and whether each is \Seen.
func imapState(t *testing.T, addr string, pool *x509.CertPool, user string) map[string]bool {
	t.Helper()
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	require.NoError(t, c.Login(user, faultPassword).Wait())
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	out := map[string]bool{}
	if sel.NumMessages == 0 {
		return out
	}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}} // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{header}}).Collect()
	require.NoError(t, err)
	for _, m := range msgs {
		out[messageID(t, m.FindBodySection(header))] = slices.Contains(m.Flags, imap.FlagSeen)
	}
	return out
}

func messageID(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	return m.Header.Get("Message-ID")
}

// faultEnv is the environment of a fetcher process using databaseURL and
// trusting caPEM.
func faultEnv(t *testing.T, databaseURL string, caPEM []byte) map[string]string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, caPEM, 0o600))
	return map[string]string{
		"DATABASE_URL": databaseURL, "FETCHER_CA_FILE": ca, "FETCHER_LOG_FORMAT": "text",
		// A race-enabled binary otherwise sleeps a second at exit, which
		// would make every run last a second and the kill delays useless.
		"GORACE": strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0"),
	}
}

// addFaultMailbox inserts a mailbox row as an admin would and returns its id.
func addFaultMailbox(t *testing.T, db *store.DB, name, user string, fs *faultServer, tokens *oauthtest.Server, afterFetch string) int64 {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.Exec(ctx, `INSERT INTO mailboxes
		(name, protocol, host, port, use_ssl, username, oauth_provider, tenant_id, client_id, client_secret, refresh_token, authority_url, after_fetch)
		VALUES (?, ?, ?, ?, true, ?, 'microsoft', 'contoso.onmicrosoft.com', 'app', 'app-secret', ?, ?, ?)`,
		name, fs.protocol, fs.host, fs.port, user, tokens.IssueRefreshToken("app", user), tokens.URL(), afterFetch))
	var id int64
	require.NoError(t, db.QueryRow(ctx, "SELECT id FROM mailboxes WHERE name = ?", []any{name}, &id))
	return id
}

// processTimeout bounds any one fetcher process: a hang is a failure, not
// a stuck CI job.
const processTimeout = 3 * time.Minute

// runFetcher runs `fetcher run --once` to its end and returns its exit
// status and output.
func runFetcher(t *testing.T, env map[string]string) (int, string) {
	t.Helper()
	cmd, out := fetcherProcess(t, env, "run", "--once")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(t, err), out.String()
	case <-time.After(processTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("fetcher did not finish within %s:\n%s", processTimeout, out)
		return 0, ""
	}
}

// runKilled starts `fetcher run --once` and SIGKILLs it after delay unless
// it ended by itself first; killed reports which.
func runKilled(t *testing.T, env map[string]string, delay time.Duration) (killed bool, code int, out string) {
	t.Helper()
	cmd, buf := fetcherProcess(t, env, "run", "--once")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-done:
		return false, exitCode(t, err), buf.String()
	case <-timer.C:
	}
	// SIGKILL: no deferred function, no signal handler runs. The process
	// may have ended just now by itself (ErrProcessDone); Wait tells.
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		require.NoError(t, err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return true, -1, buf.String()
		}
		// It ended between the timer and the kill.
		return false, exitCode(t, err), buf.String()
	case <-time.After(processTimeout):
		t.Fatalf("a SIGKILLed fetcher did not end:\n%s", buf)
		return false, 0, ""
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// pgConn is a direct connection to the test's database, for the checks:
// multi-row queries, and (in TestDatabaseGoesAwayMidRun) a view that does
// not go through the proxy the fetcher uses.
func pgConn(t *testing.T, db *store.DB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, db.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func pgInt(t *testing.T, pg *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pg.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// hasLeases reports whether the schema has mailbox leases (the worker
// leases of issue 6), which a killed fetcher leaves behind.
func hasLeases(t *testing.T, pg *pgx.Conn) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pg.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'mailboxes' AND column_name = 'lease_expires_at')`).Scan(&ok))
	return ok
}

// leaseOf describes mailbox id's lease, "" when it has none.
func leaseOf(t *testing.T, pg *pgx.Conn, id int64) string {
	t.Helper()
	if !hasLeases(t, pg) {
		return ""
	}
	var owner *string
	var until *time.Time
	require.NoError(t, pg.QueryRow(context.Background(), "SELECT lease_owner, lease_expires_at FROM mailboxes WHERE id = $1", id).Scan(&owner, &until))
	if owner == nil {
		return ""
	}
	return fmt.Sprintf("held by %s until %v", *owner, until)
}

// readyForNextRun undoes what only the passing of time would undo between
// two runs: a backoff (next_attempt_at) left by a failed run, and the
// lease of a fetcher that died, which holds until it expires. Neither is
// what these tests are about.
func readyForNextRun(t *testing.T, pg *pgx.Conn, mailboxIDs ...int64) {
	t.Helper()
	ctx := context.Background()
	leases := hasLeases(t, pg)
	for _, id := range mailboxIDs {
		_, err := pg.Exec(ctx, "UPDATE mailboxes SET next_attempt_at = NULL WHERE id = $1", id)
		require.NoError(t, err)
		if leases {
			_, err = pg.Exec(ctx, "UPDATE mailboxes SET lease_expires_at = now() - interval '1 minute' WHERE id = $1 AND lease_expires_at IS NOT NULL", id)
			require.NoError(t, err)
		}
	}
}

// mailboxState is what an admin reads on a mailbox row.
type mailboxState struct {
	Status, LastError   string
	NextAttemptAt       *time.Time
	ConsecutiveFailures int64
	RefreshToken        string
}

func readMailbox(t *testing.T, pg *pgx.Conn, id int64) mailboxState {
	t.Helper()
	var s mailboxState
	var lastError *string
	require.NoError(t, pg.QueryRow(context.Background(),
		`SELECT status, last_error, next_attempt_at, consecutive_failures, coalesce(refresh_token, '') FROM mailboxes WHERE id = $1`, id).
		Scan(&s.Status, &lastError, &s.NextAttemptAt, &s.ConsecutiveFailures, &s.RefreshToken))
	if lastError != nil {
		s.LastError = *lastError
	}
	return s
}

// requireExactlyOnce checks the database against what was delivered to a
// mailbox: every Message-ID in ticket_messages exactly once and nothing
// else, the raw bytes as delivered, each message's attachments once, one
// ticket per message (a rolled-back transaction leaves no orphan ticket),
// no message recognised only by the Message-ID guard (that would mean it
// was fetched again under another source key, which these servers never
// cause), and no after-fetch action still owed.
func requireExactlyOnce(t *testing.T, pg *pgx.Conn, mailboxID int64, want map[string]sent) {
	t.Helper()
	ctx := context.Background()
	rows, err := pg.Query(ctx, `SELECT coalesce(m.message_id, ''), m.raw,
			(SELECT count(*) FROM ticket_attachments a WHERE a.ticket_message_id = m.id)
		FROM ticket_messages m WHERE m.mailbox_id = $1 ORDER BY m.id`, mailboxID)
	require.NoError(t, err)
	seen := map[string]int{}
	var doubled, wrongRaw, wrongAttachments, extra []string
	for rows.Next() {
		var id string
		var raw []byte
		var atts int
		require.NoError(t, rows.Scan(&id, &raw, &atts))
		seen[id]++
		if seen[id] == 2 {
			doubled = append(doubled, id)
		}
		w, ok := want[id]
		switch {
		case !ok:
			extra = append(extra, id)
		case !bytes.Equal(raw, w.raw):
			wrongRaw = append(wrongRaw, fmt.Sprintf("%s (%d bytes stored, %d delivered)", id, len(raw), len(w.raw)))
		case atts != w.attachments:
			wrongAttachments = append(wrongAttachments, fmt.Sprintf("%s (%d stored, %d sent)", id, atts, w.attachments))
		}
	}
	require.NoError(t, rows.Err())
	var missing []string
	for id := range want {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	require.Empty(t, doubled, "messages stored more than once")
	require.Empty(t, missing, "delivered messages never stored (%d of %d)", len(missing), len(want))
	require.Empty(t, extra, "rows for messages never delivered")
	require.Empty(t, wrongRaw, "raw bytes differ from what was delivered")
	require.Empty(t, wrongAttachments, "attachment rows")
	require.Equal(t, int64(len(want)), pgInt(t, pg, "SELECT count(*) FROM tickets WHERE mailbox_id = $1", mailboxID),
		"one ticket per message: none orphaned by a rolled-back transaction")
	require.Zero(t, pgInt(t, pg, "SELECT count(*) FROM fetched_messages WHERE mailbox_id = $1 AND outcome = 'duplicate'", mailboxID),
		"a message caught only by the Message-ID guard was fetched under a second source key")
	require.Zero(t, pgInt(t, pg, "SELECT count(*) FROM fetched_messages WHERE mailbox_id = $1 AND action_done_at IS NULL", mailboxID),
		"after-fetch actions still owed after a clean pass")
}

// requireServerState checks what after_fetch left on the server: deleted
// messages gone, kept ones there, mark_seen ones there and \Seen.
func requireServerState(t *testing.T, fs *faultServer, user, afterFetch string, want map[string]sent) {
	t.Helper()
	got := fs.onServer(user)
	if afterFetch == "delete" {
		require.Empty(t, got, "after_fetch delete: every stored message must be gone from the server")
		return
	}
	require.Len(t, got, len(want), "after_fetch %s: every message stays on the server", afterFetch)
	var unseen []string
	for id := range want {
		seen, ok := got[id]
		require.True(t, ok, "%s is gone from the server, but after_fetch is %s", id, afterFetch)
		if afterFetch == "mark_seen" && !seen {
			unseen = append(unseen, id)
		}
	}
	require.Empty(t, unseen, "after_fetch mark_seen: stored messages not flagged \\Seen on the server")
}

// tail is the end of a process's output, for failure messages.
func tail(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-30, 0):], "\n")
}
