package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/bench"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// benchProcess runs `fetcher bench ARGS…` as its own process (this test
// binary as the fetcher, see TestMain), which runs this binary again for
// each pass, and returns its report.
func benchProcess(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"bench", "--format", "json", "--database-url", storetest.AdminURL()}, args...)...)
	cmd.Env = append(os.Environ(), "FETCHER_TEST_AS_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "fetcher bench %s:\n%s\n%s", strings.Join(args, " "), stdout.String(), stderr.String())
	var r bench.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "output:\n%s", stdout.String())
	return &r
}

// TestBenchEndToEnd runs the benchmark as a user does, on Postgres (which
// must be there: the bench fails without it, and so does this test).
func TestBenchEndToEnd(t *testing.T) {
	t.Parallel()
	r := benchProcess(t, "--mailboxes", "2", "--messages", "20", "--passes", "2")
	require.Len(t, r.Passes, 2)
	first, second := r.Passes[0], r.Passes[1]
	require.Equal(t, 40, r.Scenario.Delivered)
	require.Equal(t, 40, first.Stored, "first pass")
	require.Equal(t, 0, second.Stored, "second pass: nothing new")
	require.Equal(t, 2, first.Mailboxes, "first pass: mailboxes visited")
	require.Equal(t, 2, second.Mailboxes, "second pass: mailboxes visited")
	require.LessOrEqual(t, first.TokenRequests+second.TokenRequests, 2, "one refresh per mailbox at most")
	require.Equal(t, int64(2), first.Logins)
	require.Equal(t, int64(2), second.Logins)
	require.Positive(t, first.Commands)
	require.Positive(t, first.Bytes)
	require.Positive(t, first.Seconds)
	require.Zero(t, first.ExitCode, first.Summary)
	require.Zero(t, second.ExitCode, second.Summary)
	if first.PeakRSSMB > 0 { // Linux
		require.Less(t, first.PeakRSSMB, 2000.0)
	}
	require.True(t, r.Check.OK, "%+v", r.Check)
	require.Equal(t, 40, r.Check.Stored)
	require.Zero(t, r.Check.Missing)
	require.Zero(t, r.Check.Doubled)
}

// TestBenchDovecotFetchmail compares with fetchmail on a real Dovecot, over
// POP3 with latency, when both are installed.
func TestBenchDovecotFetchmail(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(mailboxtest.DovecotBinary); err != nil && os.Getenv(mailboxtest.RequireDovecotEnv) == "" {
		t.Skip(mailboxtest.ErrNoDovecot)
	}
	if _, err := exec.LookPath("fetchmail"); err != nil {
		// CI installs it (.ci/run): there a missing fetchmail fails.
		if os.Getenv(mailboxtest.RequireDovecotEnv) != "" {
			t.Fatal("fetchmail is not installed (apt-get install fetchmail)")
		}
		t.Skip("fetchmail is not installed (apt-get install fetchmail)")
	}
	r := benchProcess(t, "--server", "dovecot", "--protocol", "pop3", "--mailboxes", "2", "--messages", "5",
		"--large", "1", "--large-size", "1MB", "--delay", "10ms", "--passes", "1", "--fetchmail")
	require.True(t, r.Check.OK, "%+v", r.Check)
	require.Equal(t, 11, r.Passes[0].Stored)
	require.NotNil(t, r.Fetchmail)
	require.Equal(t, 11, r.Fetchmail.Delivered, "messages in fetchmail's BSMTP file")
	require.Equal(t, int64(2), r.Fetchmail.Logins, "one login per poll entry")
	require.Zero(t, r.Fetchmail.ExitCode)
	require.Positive(t, r.Fetchmail.Ratio)
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"help", []string{"bench", "--help"}, exitOK, "-large-size"},
		{"listed in the usage", []string{"help"}, exitOK, "fetcher bench"},
		{"unknown server", []string{"bench", "--server", "exchange"}, exitUsage, "--server"},
		{"bad size", []string{"bench", "--size", "huge"}, exitUsage, "--size"},
		{"fetchmail needs dovecot", []string{"bench", "--fetchmail"}, exitUsage, "--server dovecot"},
		{"not postgres", []string{"bench", "--database-url", "sqlite:x.db"}, exitUsage, "Postgres"},
		{"bad format", []string{"bench", "--format", "xml"}, exitUsage, "--format"},
		{"stray argument", []string{"bench", "now"}, exitUsage, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, context.Background(), nil, tt.args...)
			require.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stdout+r.stderr, tt.wantText)
		})
	}
}
