package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
	"github.com/fetcherhq/fetcher/internal/store/storetest"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// screen replays what was written to a terminal and returns the lines it
// shows, scrollback included: printable text, CR, LF (as the terminal's
// onlcr makes it), and of the control sequences only those the progress
// display may use, so that any other fails the test.
func screen(t *testing.T, out string) []string {
	t.Helper()
	lines := [][]rune{nil}
	row, col := 0, 0
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\n':
			row, col = row+1, 0
			if row == len(lines) {
				lines = append(lines, nil)
			}
		case '\r':
			col = 0
		case '\x1b':
			end := i + 2
			for end < len(rs) && (rs[end] < '@' || rs[end] > '~') { // up to the final byte (ECMA-48 5.4)
				end++
			}
			require.Less(t, end, len(rs), "unfinished escape sequence at %d", i)
			row, col, lines = csi(t, string(rs[i+2:end]), rs[end], row, col, lines)
			i = end
		default:
			require.GreaterOrEqual(t, r, ' ', "control character %q written", r)
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = r
			col++
		}
	}
	out2 := make([]string, 0, len(lines))
	for _, l := range lines {
		out2 = append(out2, string(l))
	}
	return out2[:len(out2)-1] // the cursor's empty line below the last
}

// csi applies one control sequence: cursor up (CUU), erase below (ED 0)
// and automatic wrap off and on (DECAWM, nothing to do here).
func csi(t *testing.T, params string, final rune, row, col int, lines [][]rune) (int, int, [][]rune) {
	t.Helper()
	switch {
	case final == 'A':
		n, err := strconv.Atoi(params)
		require.NoError(t, err)
		require.LessOrEqual(t, n, row, "cursor moved above the first line")
		return row - n, col, lines
	case final == 'J' && params == "":
		if col < len(lines[row]) {
			lines[row] = lines[row][:col]
		}
		return row, col, lines[:row+1]
	case (final == 'l' || final == 'h') && params == "?7":
		return row, col, lines
	}
	t.Fatalf("unexpected control sequence ESC [%s%c", params, final)
	return row, col, lines
}

type viewBundle struct {
	out   *bytes.Buffer
	clock *fakeClock
	view  *progressView
}

func setupView(t *testing.T) *viewBundle {
	t.Helper()
	out := &bytes.Buffer{}
	clock := &fakeClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	return &viewBundle{out: out, clock: clock, view: newProgressView(out, clock.now)}
}

func (b *viewBundle) screen(t *testing.T) []string {
	t.Helper()
	return screen(t, b.out.String())
}

// TestProgressViewDrawsMailboxes: a line per mailbox being fetched, with
// its name, protocol, messages done of total, new tickets and time, and
// a summary that stays once it ends.
func TestProgressViewDrawsMailboxes(t *testing.T) {
	t.Parallel()
	b := setupView(t)
	v := b.view
	v.MailboxStarted(fetch.ProgressMailbox{ID: 1, Name: "helpdesk", Protocol: "imap"})
	v.MailboxStarted(fetch.ProgressMailbox{ID: 2, Name: "sales-eu", Protocol: "pop3"})
	b.clock.add(3200 * time.Millisecond)
	v.MailboxTotal(1, 120)
	v.MessageDone(1, 37, 5) // within redrawEvery of the last draw: shown at the next refresh
	b.clock.add(redrawEvery)
	v.refresh()
	require.Equal(t, []string{
		"helpdesk  imap  37/120 messages  5 new tickets  3.3s",
		"sales-eu  pop3  connecting  3.3s",
	}, b.screen(t))

	b.clock.add(time.Second)
	v.MailboxTotal(2, 1)
	v.MessageDone(2, 1, 1)
	v.MailboxEnded(2, "ok", store.Run{MessagesFetched: 1, TicketsCreated: 1}, 4200*time.Millisecond)
	v.MessageDone(1, 120, 9)
	v.MailboxEnded(1, "failed", store.Run{MessagesFetched: 120, TicketsCreated: 9, MessagesAppended: 2, MessagesSkipped: 1}, 75*time.Second)
	require.Equal(t, []string{
		"sales-eu  pop3  ok  1/1 messages  1 new ticket  4.2s",
		"helpdesk  imap  failed  120/120 messages  9 new tickets  2 replies  1 skipped  1m15s",
	}, b.screen(t), "the block is gone, the summaries stay")

	v.MailboxStarted(fetch.ProgressMailbox{ID: 3, Name: "late", Protocol: "imap"})
	v.MailboxEnded(3, "failed", store.Run{}, time.Second)
	require.Equal(t, "late  imap  failed  1.0s", b.screen(t)[2], "no message counts before the listing")
}

// TestProgressViewKeepsLogLinesWhole: log lines written while the block
// is shown land above it, whole, a line split over two writes included,
// and the block comes back below them.
func TestProgressViewKeepsLogLinesWhole(t *testing.T) {
	t.Parallel()
	b := setupView(t)
	v := b.view
	v.MailboxStarted(fetch.ProgressMailbox{ID: 1, Name: "helpdesk", Protocol: "imap"})
	v.MailboxTotal(1, 10)
	for i := 1; i <= 10; i++ {
		b.clock.add(150 * time.Millisecond)
		v.MessageDone(1, i, i/2)
		_, err := fmt.Fprintf(v, "level=INFO msg=\"line %d\"\n", i)
		require.NoError(t, err)
	}
	_, err := v.Write([]byte("level=WARN msg=\"split "))
	require.NoError(t, err)
	_, err = v.Write([]byte("in two\"\nlevel=INFO msg=\"and one more\"\n"))
	require.NoError(t, err)
	b.clock.add(200 * time.Millisecond)
	v.refresh()

	got := b.screen(t)
	want := make([]string, 0, 13)
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("level=INFO msg=\"line %d\"", i))
	}
	want = append(want, `level=WARN msg="split in two"`, `level=INFO msg="and one more"`,
		"helpdesk  imap  10/10 messages  5 new tickets  1.7s")
	require.Equal(t, want, got)
	for _, line := range want[:12] {
		require.Contains(t, b.out.String(), line+"\n", "each log line is written in one piece")
	}
}

// TestProgressViewThrottles: however many messages a second are stored,
// the block is drawn at most once per redrawEvery; the last state shows
// at the next refresh.
func TestProgressViewThrottles(t *testing.T) {
	t.Parallel()
	b := setupView(t)
	v := b.view
	draws := func() int { return strings.Count(b.out.String(), "\x1b[?7l") }
	v.MailboxStarted(fetch.ProgressMailbox{ID: 1, Name: "busy", Protocol: "imap"})
	v.MailboxTotal(1, 1000)
	require.Equal(t, 1, draws())
	for i := 1; i <= 1000; i++ {
		if i%100 == 0 {
			b.clock.add(10 * time.Millisecond) // 1000 messages in 100 ms
		}
		v.MessageDone(1, i, i)
		_, _ = fmt.Fprintln(v, "a log line")
		v.refresh()
	}
	require.Equal(t, 2, draws(), "one draw at the start, one when 100 ms had passed")
	b.clock.add(redrawEvery)
	v.refresh()
	require.Equal(t, 3, draws())
	got := b.screen(t)
	require.Equal(t, "busy  imap  1000/1000 messages  1000 new tickets  0.2s", got[len(got)-1])
}

// TestProgressViewBoundsItsBlock: names cannot move the cursor, long ones
// are cut, and past maxProgressLines mailboxes the rest are counted.
func TestProgressViewBoundsItsBlock(t *testing.T) {
	t.Parallel()
	b := setupView(t)
	v := b.view
	v.MailboxStarted(fetch.ProgressMailbox{ID: 1, Name: "evil\x1b[2J\r\nname", Protocol: "imap"})
	v.MailboxStarted(fetch.ProgressMailbox{ID: 2, Name: strings.Repeat("long", 10), Protocol: "imap"})
	for i := 3; i <= maxProgressLines+3; i++ {
		v.MailboxStarted(fetch.ProgressMailbox{ID: int64(i), Name: fmt.Sprint("box", i), Protocol: "pop3"})
	}
	b.clock.add(redrawEvery)
	v.refresh()
	got := b.screen(t)
	require.Len(t, got, maxProgressLines+1)
	require.Equal(t, fmt.Sprintf("%-*s  imap  connecting  0.1s", maxNameWidth, "evil?[2J??name"), got[0])
	require.Equal(t, strings.Repeat("long", 6)[:maxNameWidth-1]+"…  imap  connecting  0.1s", got[1])
	require.Equal(t, "… and 3 more mailboxes", got[maxProgressLines])

	v.close()
	require.Empty(t, b.screen(t), "close leaves no block behind")
}

func TestProgressWanted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode, format string
		terminal     bool
		want         bool
	}{
		{"auto", "auto", true, true},
		{"auto", "auto", false, false}, // a pipe, a file, a service manager
		{"auto", "text", true, false},  // an explicit log format is for a reader of logs
		{"auto", "json", true, false},
		{"always", "json", false, true},
		{"never", "auto", true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s terminal=%t", tt.mode, tt.format, tt.terminal), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, progressWanted(tt.mode, tt.format, tt.terminal),
				"progressWanted(%q, %q, %t)", tt.mode, tt.format, tt.terminal)
		})
	}
}

// TestRunOnceProgressOnlyWhenWanted: `run --once` with stderr not a
// terminal and every setting left to auto writes log lines and no escape
// sequence at all; forced on, the same run draws its progress.
func TestRunOnceProgressOnlyWhenWanted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		progress string
		wantANSI bool
	}{
		{"auto off a terminal", "", false},
		{"always", "always", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.SQLite(t)
			env, tokens, imapSrv := servers(t, db)
			delete(env, "FETCHER_LOG_FORMAT") // auto
			env["FETCHER_PROGRESS"] = tt.progress
			insertMailbox(t, db, "Help", "help@example.com", tokens.IssueRefreshToken("app", "help@example.com"), imapSrv, tokens)
			imapSrv.AddUser("help@example.com", "")
			for i := range 2 {
				_, err := imapSrv.Deliver("help@example.com", "INBOX",
					fmt.Appendf(nil, "From: a@example.org\r\nSubject: %d\r\nMessage-ID: <%d@example.org>\r\n\r\nbody\r\n", i, i))
				require.NoError(t, err)
			}

			r := runMain(t, context.Background(), env, "run", "--once")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stderr, `"msg":"mailbox done"`, "JSON log lines off a terminal")
			require.Equal(t, tt.wantANSI, strings.Contains(r.stdout+r.stderr, "\x1b"), "escape sequences in:\n%q", r.stderr)
			if tt.wantANSI {
				require.True(t, slices.ContainsFunc(screen(t, r.stderr), func(line string) bool {
					return strings.HasPrefix(line, "Help  imap  ok  2/2 messages  2 new tickets  ")
				}), "the mailbox's summary line in:\n%s", r.stderr)
			}
		})
	}
}
