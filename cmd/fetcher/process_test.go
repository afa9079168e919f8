package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// TestMain lets a test run this test binary as the fetcher itself, so that
// tests can start real, separate fetcher processes.
func TestMain(m *testing.M) {
	if os.Getenv("FETCHER_TEST_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// fetcherProcess starts `fetcher ARGS…` as a separate process.
func fetcherProcess(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FETCHER_TEST_AS_MAIN=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	return cmd, &out
}

// TestTwoProcessesRefreshOnce: two fetcher processes start on one mailbox
// at the same moment, against a token endpoint that revokes the whole token
// family when a refresh token is used twice. The endpoint must see one
// refresh, and every message must be stored once.
func TestTwoProcessesRefreshOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Postgres(t)
	env, tokens, imapSrv := serversWith(t, db, oauthtest.Options{Strict: true})
	const user = "shared@example.com"
	imapSrv.AddUser(user, "")
	insertMailbox(t, db, "Shared", user, tokens.IssueRefreshToken("app", user), imapSrv, tokens)
	for i := range 5 {
		_, err := imapSrv.Deliver(user, "INBOX", []byte("From: a@example.org\r\nSubject: n"+strconv.Itoa(i)+"\r\nMessage-ID: <n"+strconv.Itoa(i)+"@example.org>\r\n\r\nbody\r\n"))
		require.NoError(t, err)
	}
	// A slow first refresh, so the second process arrives while the first
	// holds the mailbox row's lock.
	tokens.FailNext(oauthtest.Slow(time.Second))

	a, outA := fetcherProcess(t, env, "run", "--once")
	b, outB := fetcherProcess(t, env, "run", "--once")
	errA, errB := a.Wait(), b.Wait()
	require.NoError(t, errA, "first process:\n%s", outA)
	require.NoError(t, errB, "second process:\n%s", outB)

	require.Equal(t, 1, tokens.Requests(), "the second process must reuse the token the first stored")
	var n int64
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM ticket_messages", nil, &n))
	require.Equal(t, int64(5), n)

	// The stored (rotated) refresh token is still good.
	require.NoError(t, db.Exec(ctx, "UPDATE mailboxes SET access_token = NULL"))
	r := runMain(t, ctx, env, "run", "--once")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, 2, tokens.Requests())
}
