package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	expected := map[string]int{"<a>": 0, "<b>": 0, "<c>": 1}
	ok := compare([]storedRow{{0, "<a>"}, {0, "<b>"}, {1, "<c>"}}, expected)
	require.True(t, ok.OK, "%+v", ok)
	require.Equal(t, 3, ok.Stored)

	bad := compare([]storedRow{{0, "<a>"}, {0, "<a>"}, {0, "<c>"}, {1, "<x>"}}, expected)
	require.False(t, bad.OK)
	require.Equal(t, 2, bad.Missing, "<b> never stored, <c> only in the wrong mailbox")
	require.Equal(t, 1, bad.Doubled)
	require.Equal(t, 2, bad.Unexpected, "<c> in mailbox 0 and <x>")
	require.Len(t, bad.Problems, 4)
}

func sampleReport() *Report {
	return &Report{
		Scenario: Scenario{Server: ServerMemory, ServerDetail: "memory (in-process IMAP server)", Protocol: ProtocolIMAP,
			Mailboxes: 2, Messages: 20, Size: SizeRealistic, Seed: 1, Delivered: 40, DeliveredBytes: 900 * KB,
			DelayMS: 50, Concurrency: 4, ConcurrencyDefault: true, GoVersion: "go1.26", Platform: "linux/amd64", CPUs: 2},
		Passes: []Pass{
			{Pass: 1, Mailboxes: 2, Stored: 40, Bytes: 900 * KB,
				Measured: Measured{Seconds: 1.5, MessagesPerSecond: 26.7, Commands: 12, Logins: 2, TokenRequests: 2}},
			{Pass: 2, Mailboxes: 2, Measured: Measured{Seconds: 0.5, Commands: 6, Logins: 2}},
		},
		Check: Check{Delivered: 40, Stored: 40, OK: true},
	}
}

func TestReportTable(t *testing.T) {
	t.Parallel()
	r := sampleReport()
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	out := b.String()
	require.Contains(t, out, "scenario: server memory (in-process IMAP server), protocol imap, 2 mailboxes × 20 messages (realistic sizes, seed 1) = 40 messages, 0.9 MB; delay 50ms per round trip; concurrency 4 (fetcher default)")
	require.Regexp(t, `(?m)^pass\s+mailboxes\s+stored\s+MB\s+seconds`, out)
	require.Regexp(t, `(?m)^1\s+2\s+40\s+0\.9\s+1\.50\s`, out)
	require.Regexp(t, `(?m)^2\s+2\s+0\s+0\.0\s+0\.50\s`, out)
	require.Contains(t, out, "result: OK: 40 of 40 delivered messages stored exactly once")
	require.NotContains(t, out, "busy")
	require.True(t, r.OK())

	r.Scenario.Load = 1.5
	b.Reset()
	require.NoError(t, r.WriteTable(&b))
	require.Contains(t, b.String(), "note: the machine was busy before the bench began (load average 1.5 on 2 CPUs)")

	r.Passes[1].ExitCode = 1
	r.Passes[1].Summary = "2 mailboxes, 1 failed"
	require.False(t, r.OK())
	require.Contains(t, r.Verdict(), "result: FAILED")
	require.Contains(t, r.Verdict(), "pass 2 exited 1 (2 mailboxes, 1 failed)")
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, sampleReport().WriteJSON(&b))
	var got map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	passes := got["passes"].([]any)
	require.Len(t, passes, 2)
	require.InDelta(t, 40, passes[0].(map[string]any)["messages_stored"], 0)
	require.InDelta(t, 2, passes[0].(map[string]any)["token_requests"], 0)
	require.Equal(t, true, got["check"].(map[string]any)["ok"])
	require.Equal(t, "imap", got["scenario"].(map[string]any)["protocol"])
}
