package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

// streamBody returns a body of exactly n bytes (at least 2 when it ends
// in CRLF) in CRLF lines, many of them starting with ".", which POP3
// byte-stuffs: ".", "..", ". " and a 1000-character line among them. The
// last line starts with "." too, and ends without CRLF unless finalCRLF.
func streamBody(seed, n int, finalCRLF bool) []byte {
	end := ""
	if finalCRLF {
		end = "\r\n"
		n = max(n, 2)
	}
	lines := []string{
		".\r\n", ".leading dot\r\n", "..two dots\r\n", ". \r\n", "\r\n",
		"a plain line of the message body\r\n", "8-bit: Grüße\r\n", strings.Repeat("0123456789", 100) + "\r\n",
	}
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	b := make([]byte, 0, n)
	for {
		l := lines[r.IntN(len(lines))]
		if len(b)+len(l)+len(end)+1 > n {
			break
		}
		b = append(b, l...)
	}
	fill := n - len(b) - len(end)
	if fill > 0 {
		b = append(b, '.')
		b = append(b, strings.Repeat("z", fill-1)...)
	}
	return append(b, end...)
}

// streamMessage is message i: a header and a body of size bytes.
func streamMessage(i, size int, finalCRLF bool) []byte {
	head := fmt.Sprintf("From: s%d@example.org\r\nSubject: stream %d\r\nMessage-ID: <s%d@example.org>\r\n\r\n", i, i, i)
	return append([]byte(head), streamBody(i, size, finalCRLF)...)
}

// streamSizes are the body sizes the messages of a batch cycle through:
// from 1 byte to 200 KB.
var streamSizes = []int{1, 2, 3, 60, 700, 4 << 10, 16 << 10, 65 << 10, 200 << 10}

// delivered is what got saw for one message.
type delivered struct {
	key string
	raw []byte
	err error
}

// collect streams msgs and records what got sees; stopAt, when above 0,
// makes got return errStop at that call.
func collect(ctx context.Context, s mailbox.Session, msgs []mailbox.Message, stopAt int) ([]delivered, error) {
	var out []delivered
	err := s.Stream(ctx, msgs, func(msg mailbox.Message, raw []byte, err error) error {
		out = append(out, delivered{key: msg.Key, raw: raw, err: err})
		if len(out) == stopAt {
			return errStop
		}
		return nil
	})
	return out, err
}

var errStop = errors.New("got says stop")

// streamRig is a server of one protocol holding a batch of messages, and a
// session that has listed them.
type streamRig struct {
	s    mailbox.Session
	acct mailbox.Account
	opts *mailbox.Options
	list mailbox.Listing
	// raws are the messages as delivered, in list order.
	raws [][]byte
	// fetches counts the commands that fetched message bodies (UID FETCH
	// BODY.PEEK[], RETR) so far.
	fetches func() int
	// retrs counts, for POP3, the RETRs of message number n so far.
	retrs func(n int) int
	// pipelined is POP3Server.Pipelined.
	pipelined func() int
	// vanish makes message i disappear from the server behind the
	// session's back and returns msgs as Stream should be given them.
	vanish func(t *testing.T, msgs []mailbox.Message, i int) []mailbox.Message
	// refuse sets a RETR fault (POP3 only).
	refuse func(fault func(n int) mailboxtest.RETRFault)
}

// rigOptions are faults for a rig's server.
type rigOptions struct {
	// stallAt, when above 0, makes the server hang half-way through the
	// stallAt-th message it sends.
	stallAt int
	// timeout is the session's command timeout; 0 is 5s.
	timeout time.Duration
}

// streamProto starts a rig holding raws; finalCRLF says whether the
// protocol adds a final CRLF to a message without one.
type streamProto struct {
	name      string
	finalCRLF bool
	start     func(t *testing.T, raws [][]byte, o rigOptions) *streamRig
}

var streamProtos = []streamProto{
	{name: "imap", finalCRLF: false, start: startIMAPRig},
	{name: "pop3", finalCRLF: true, start: func(t *testing.T, raws [][]byte, o rigOptions) *streamRig {
		return startPOP3Rig(t, raws, false, o)
	}},
	{name: "pop3 pipelining", finalCRLF: true, start: func(t *testing.T, raws [][]byte, o rigOptions) *streamRig {
		return startPOP3Rig(t, raws, true, o)
	}},
}

func (o rigOptions) options(tlsCfg *tls.Config) *mailbox.Options {
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	return &mailbox.Options{TLSConfig: tlsCfg, CommandTimeout: timeout}
}

// startIMAPRig serves the messages over plain IMAP, so that Received
// shows the commands in clear.
func startIMAPRig(t *testing.T, raws [][]byte, o rigOptions) *streamRig {
	t.Helper()
	opts := mailboxtest.IMAPOptions{Security: "plain", CheckToken: func(u, tok string) bool { return u == user && tok == goodToken }}
	if o.stallAt > 0 {
		var sent atomic.Int32
		opts.StallMidLiteral = func(string) bool { return int(sent.Add(1)) >= o.stallAt }
	}
	srv, err := mailboxtest.StartIMAP(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.AddUser(user, "secret-password")
	b := &testBundle{
		srv: srv,
		acct: mailbox.Account{
			Protocol: "imap", Host: srv.Host(), Port: srv.Port(), Security: mailbox.Plain,
			Username: user, AccessToken: goodToken, AllowPlaintext: true,
		},
		opts: o.options(nil),
	}
	for _, raw := range raws {
		_, err := b.srv.Deliver(user, "INBOX", raw)
		require.NoError(t, err)
	}
	s := open(t, b)
	list, err := s.List(context.Background(), mailbox.Cursor{})
	require.NoError(t, err)
	require.Len(t, list.Messages, len(raws))
	return &streamRig{
		s: s, acct: b.acct, opts: b.opts, list: list, raws: raws,
		fetches: func() int { return bytes.Count(b.srv.Received(), []byte("BODY.PEEK[]")) },
		vanish: func(t *testing.T, msgs []mailbox.Message, i int) []mailbox.Message {
			expunge(t, b, msgs[i].UID)
			return msgs
		},
	}
}

// expunge deletes messages by UID through a session of its own, as
// another client of the mailbox would.
func expunge(t *testing.T, b *testBundle, uids ...uint32) {
	t.Helper()
	c, err := imapclient.DialInsecure(b.srv.Addr, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, "secret-password").Wait())
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	var set imap.UIDSet
	for _, uid := range uids {
		set.AddNum(imap.UID(uid))
	}
	require.NoError(t, c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	require.NoError(t, c.UIDExpunge(set).Close())
	require.NoError(t, c.Logout().Wait())
}

// startPOP3Rig serves the messages over plain POP3, so that Received
// shows the commands in clear.
func startPOP3Rig(t *testing.T, raws [][]byte, pipelining bool, o rigOptions) *streamRig {
	t.Helper()
	b := setupPOP3(t, mailboxtest.POP3Options{Security: "plain", Pipelining: pipelining})
	b.opts = o.options(b.opts.TLSConfig)
	for _, raw := range raws {
		deliver(t, b, raw)
	}
	s := openPOP3(t, b)
	list, err := s.List(context.Background(), mailbox.Cursor{})
	require.NoError(t, err)
	require.Len(t, list.Messages, len(raws))
	if o.stallAt > 0 {
		b.srv.SetRETRFault(func(n int) mailboxtest.RETRFault {
			if n >= o.stallAt {
				return mailboxtest.RETRStall
			}
			return mailboxtest.RETRServe
		})
		t.Cleanup(func() { b.srv.SetRETRFault(nil) })
	}
	return &streamRig{
		s: s, acct: b.acct, opts: b.opts, list: list, raws: raws,
		fetches:   func() int { return bytes.Count(b.srv.Received(), []byte("RETR ")) },
		retrs:     func(n int) int { return bytes.Count(b.srv.Received(), fmt.Appendf(nil, "RETR %d\r\n", n)) },
		pipelined: b.srv.Pipelined,
		vanish: func(t *testing.T, msgs []mailbox.Message, i int) []mailbox.Message {
			// A key that is not in this session's listing: settled
			// without a command.
			msgs[i].Key += "-vanished"
			return msgs
		},
		refuse: func(fault func(n int) mailboxtest.RETRFault) {
			b.srv.SetRETRFault(fault)
			t.Cleanup(func() { b.srv.SetRETRFault(nil) })
		},
	}
}

// requireIntact checks that got saw every message of msgs once, in order,
// byte for byte, except those in errs, which came with errors that
// satisfy the check.
func requireIntact(t *testing.T, rig *streamRig, msgs []mailbox.Message, got []delivered, errs map[int]func(error) bool) {
	t.Helper()
	if len(got) != len(msgs) {
		t.Fatalf("got saw %d messages, want %d:%s", len(got), len(msgs), summary(got))
	}
	for i, d := range got {
		require.Equal(t, msgs[i].Key, d.key, "message %d out of order", i)
		if check, ok := errs[i]; ok {
			require.True(t, check(d.err), "message %d: unexpected error %v", i, d.err)
			require.Nil(t, d.raw, "message %d", i)
			continue
		}
		require.NoError(t, d.err, "message %d", i)
		require.True(t, bytes.Equal(rig.raws[msgs[i].UID-1], d.raw), "message %d (%d bytes) not byte-exact: got %d bytes %q",
			i, len(rig.raws[msgs[i].UID-1]), len(d.raw), truncated(d.raw))
	}
}

// summary lists what got saw, without the bytes.
func summary(got []delivered) string {
	var b strings.Builder
	for i, d := range got {
		fmt.Fprintf(&b, "\n%d %s %d bytes, err %v", i, d.key, len(d.raw), d.err)
	}
	return b.String()
}

// batch builds n messages with the sizes cycling through streamSizes;
// those at even i end without CRLF unless the protocol adds it.
func batch(p streamProto, n int) [][]byte {
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = streamMessage(i, streamSizes[i%len(streamSizes)], p.finalCRLF || i%2 == 1)
	}
	return raws
}

func TestStreamByteExactInOrder(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rig := p.start(t, batch(p, 300), rigOptions{})
			before := rig.fetches()
			got, err := collect(context.Background(), rig.s, rig.list.Messages, 0)
			require.NoError(t, err)
			requireIntact(t, rig, rig.list.Messages, got, nil)
			switch p.name {
			case "imap":
				require.Equal(t, 1, rig.fetches()-before, "one UID FETCH for the whole batch")
			case "pop3":
				require.Equal(t, 300, rig.fetches()-before)
				require.Zero(t, rig.pipelined(), "commands must wait for replies without PIPELINING")
			case "pop3 pipelining":
				require.Equal(t, 300, rig.fetches()-before)
				require.Positive(t, rig.pipelined(), "RETRs must be pipelined when the server offers PIPELINING")
			}
		})
	}
}

func TestStreamTooLarge(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			raws := make([][]byte, 20)
			for i := range raws {
				size := 1 << 10
				if i == 9 {
					size = 50 << 10
				}
				raws[i] = streamMessage(i, size, true)
			}
			rig := p.start(t, raws, rigOptions{})
			msgs := rig.list.Messages
			const limit = 10 << 10
			for i := range msgs {
				msgs[i].MaxBytes = limit
			}
			got, err := collect(context.Background(), rig.s, msgs, 0)
			require.NoError(t, err)
			requireIntact(t, rig, msgs, got, map[int]func(error) bool{9: func(err error) bool {
				var tl *mailbox.TooLargeError
				return errors.As(err, &tl) && tl.Size == int64(len(raws[9])) && tl.Limit == limit
			}})
		})
	}
}

func TestStreamGone(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rig := p.start(t, batch(p, 40), rigOptions{})
			msgs := rig.list.Messages
			gone := map[int]func(error) bool{}
			for _, i := range []int{0, 7, 8, 39} {
				msgs = rig.vanish(t, msgs, i)
				gone[i] = func(err error) bool { return errors.Is(err, mailbox.ErrGone) }
			}
			got, err := collect(context.Background(), rig.s, msgs, 0)
			require.NoError(t, err)
			requireIntact(t, rig, msgs, got, gone)
		})
	}
}

// TestStreamStopsAtGotError: got's error ends Stream and comes back as
// is, and the session is still in step: the replies in flight were read
// off.
func TestStreamStopsAtGotError(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rig := p.start(t, batch(p, 50), rigOptions{})
			ctx := context.Background()
			got, err := collect(ctx, rig.s, rig.list.Messages, 5)
			require.Equal(t, errStop, err, "Stream must return got's error as is")
			requireIntact(t, rig, rig.list.Messages[:5], got, nil)

			m := rig.list.Messages[40]
			raw, err := rig.s.Fetch(ctx, m)
			require.NoError(t, err)
			require.Equal(t, rig.raws[40], raw)
			keys := []string{rig.list.Messages[0].Key}
			if strings.HasPrefix(p.name, "pop3") {
				done, err := rig.s.Apply(ctx, mailbox.Delete, "", keys)
				require.NoError(t, err)
				require.Empty(t, done)
			} else {
				apply(t, rig.s, ctx, mailbox.MarkSeen, "", keys)
			}
			again, err := collect(ctx, rig.s, rig.list.Messages[45:], 0)
			require.NoError(t, err)
			requireIntact(t, rig, rig.list.Messages[45:], again, nil)
			require.NoError(t, rig.s.Close())
			if p.name == "pop3 pipelining" {
				require.Positive(t, rig.pipelined())
			}
		})
	}
}

// TestStreamSlowGot: the time got takes (the database catching up) does
// not count against the command deadline, which bounds the server only.
func TestStreamSlowGot(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			raws := make([][]byte, 6)
			for i := range raws {
				raws[i] = streamMessage(i, 300<<10, true)
			}
			rig := p.start(t, raws, rigOptions{timeout: time.Second})
			var got []delivered
			err := rig.s.Stream(context.Background(), rig.list.Messages, func(msg mailbox.Message, raw []byte, err error) error {
				got = append(got, delivered{key: msg.Key, raw: raw, err: err})
				if len(got)%3 == 1 {
					time.Sleep(1600 * time.Millisecond) // longer than the command timeout
				}
				return nil
			})
			require.NoError(t, err)
			requireIntact(t, rig, rig.list.Messages, got, nil)
		})
	}
}

// TestStreamCancel: ctx ending mid-stream ends Stream at once with ctx's
// error, whether got or the server is busy at the time.
func TestStreamCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// stallAt: see rigOptions; 0 cancels from got at its third call.
		stallAt int
	}{
		{name: "in got"},
		{name: "server stalled", stallAt: 4},
	}
	for _, p := range streamProtos {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				rig := p.start(t, batch(p, 50), rigOptions{stallAt: tt.stallAt})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.stallAt > 0 {
					time.AfterFunc(200*time.Millisecond, cancel)
				}
				calls := 0
				start := time.Now()
				err := rig.s.Stream(ctx, rig.list.Messages, func(mailbox.Message, []byte, error) error {
					if calls++; calls == 3 && tt.stallAt == 0 {
						cancel()
					}
					return nil
				})
				require.ErrorIs(t, err, context.Canceled)
				require.Less(t, time.Since(start), 2*time.Second, "ctx must end the stream, not the command timeout")
				require.Less(t, calls, 50)
				_, err = rig.s.List(context.Background(), mailbox.Cursor{})
				require.Error(t, err, "the connection is closed once ctx ended a call")
			})
		}
	}
}

// TestStreamCommandTimeout: a server that hangs mid-stream is cut off by
// the command deadline.
func TestStreamCommandTimeout(t *testing.T) {
	t.Parallel()
	for _, p := range streamProtos {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rig := p.start(t, batch(p, 50), rigOptions{stallAt: 4, timeout: time.Second})
			start := time.Now()
			got, err := collect(context.Background(), rig.s, rig.list.Messages, 0)
			var ne *mailbox.NetError
			require.ErrorAs(t, err, &ne)
			require.True(t, mailbox.IsTemporary(err))
			require.Less(t, time.Since(start), 5*time.Second)
			requireIntact(t, rig, rig.list.Messages[:3], got, nil)
		})
	}
}

// TestPOP3StreamRefused: a RETR refused mid-stream. The replies in flight
// behind it are read off, "UIDL n" tells a vanished message (ErrGone, the
// stream goes on and sends the drained RETRs again) from one the server
// refuses but still lists (a NetError: skipping it would lose it).
func TestPOP3StreamRefused(t *testing.T) {
	t.Parallel()
	const refused = 10 // message number, of 40
	tests := []struct {
		name  string
		fault mailboxtest.RETRFault
	}{
		{name: "vanished", fault: mailboxtest.RETRVanish},
		{name: "refused, still listed", fault: mailboxtest.RETRRefuse},
		{name: "refused, then hang-up", fault: mailboxtest.RETRRefuseHangUp},
	}
	for _, p := range streamProtos[1:] {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				rig := p.start(t, batch(p, 40), rigOptions{})
				rig.refuse(func(n int) mailboxtest.RETRFault {
					if n == refused {
						return tt.fault
					}
					return mailboxtest.RETRServe
				})
				got, err := collect(context.Background(), rig.s, rig.list.Messages, 0)
				if tt.fault == mailboxtest.RETRVanish {
					require.NoError(t, err)
					requireIntact(t, rig, rig.list.Messages, got, map[int]func(error) bool{
						refused - 1: func(err error) bool { return errors.Is(err, mailbox.ErrGone) },
					})
					require.Equal(t, 1, rig.retrs(refused))
					for n := refused + 1; n <= 40; n++ {
						want := 1
						if p.name == "pop3 pipelining" {
							want = 2 // drained behind the refusal, then sent again
						}
						require.Equal(t, want, rig.retrs(n), "RETR %d", n)
					}
					require.NoError(t, rig.s.Close())
					return
				}
				var ne *mailbox.NetError
				require.ErrorAs(t, err, &ne)
				require.True(t, mailbox.IsTemporary(err))
				n := refused - 1
				if tt.fault == mailboxtest.RETRRefuseHangUp {
					// Closing with commands unread makes the server's TCP
					// send RST, which may cost replies already sent: what
					// came must be whole, and nothing taken for gone.
					n = min(n, len(got))
				}
				requireIntact(t, rig, rig.list.Messages[:n], got, nil)
				_, err = rig.s.List(context.Background(), mailbox.Cursor{})
				require.ErrorContains(t, err, "ended earlier", "the session stops at a refused message")
				require.Error(t, rig.s.Close(), "no QUIT after the session failed")
			})
		}
	}
}

// TestIMAPStreamOrder: msgs in any order, even with repeats, come back in
// that order; one UID FETCH goes out per ascending run of UIDs, so a
// server answering in UID order never makes Stream hold messages back.
func TestIMAPStreamOrder(t *testing.T) {
	t.Parallel()
	p := streamProtos[0]
	rig := p.start(t, batch(p, 6), rigOptions{})
	m := rig.list.Messages
	msgs := []mailbox.Message{m[2], m[1], m[1], m[0], m[4], m[5], m[3]}
	before := rig.fetches()
	got, err := collect(context.Background(), rig.s, msgs, 0)
	require.NoError(t, err)
	requireIntact(t, rig, msgs, got, nil)
	require.Equal(t, 5, rig.fetches()-before, "runs: 3 | 2 | 2 | 1 5 6 | 4")
}

// benchMessages is what the benchmarks stream: 1000 messages of 20 KB.
func benchMessages() (raws [][]byte, total int64) {
	raws = make([][]byte, 1000)
	for i := range raws {
		raws[i] = streamMessage(i, 20<<10, true)
		total += int64(len(raws[i]))
	}
	return raws, total
}

func BenchmarkIMAPStream(b *testing.B) {
	raws, total := benchMessages()
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{Security: "tls"})
	require.NoError(b, err)
	b.Cleanup(func() { srv.Close() })
	srv.AddUser(user, "secret-password")
	for _, raw := range raws {
		_, err := srv.Deliver(user, "INBOX", raw)
		require.NoError(b, err)
	}
	acct := mailbox.Account{Protocol: "imap", Host: srv.Host(), Port: srv.Port(), Security: mailbox.TLS, Username: user, Password: "secret-password"}
	benchStream(b, acct, &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}}, total)
}

func BenchmarkPOP3Stream(b *testing.B) {
	raws, total := benchMessages()
	for _, pipelining := range []bool{true, false} {
		b.Run(map[bool]string{true: "pipelining", false: "one by one"}[pipelining], func(b *testing.B) {
			srv, err := mailboxtest.StartPOP3(mailboxtest.POP3Options{Security: "tls", Pipelining: pipelining})
			require.NoError(b, err)
			b.Cleanup(func() { srv.Close() })
			srv.AddUser(user, pop3Password)
			for _, raw := range raws {
				_, err := srv.Deliver(user, raw)
				require.NoError(b, err)
			}
			acct := mailbox.Account{Protocol: "pop3", Host: srv.Host(), Port: srv.Port(), Security: mailbox.TLS, Username: user, Password: pop3Password}
			benchStream(b, acct, &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}}, total)
		})
	}
}

func benchStream(b *testing.B, acct mailbox.Account, opts *mailbox.Options, total int64) {
	ctx := context.Background()
	s, err := mailbox.Open(ctx, acct, opts)
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	list, err := s.List(ctx, mailbox.Cursor{})
	require.NoError(b, err)
	require.Len(b, list.Messages, 1000)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.Stream(ctx, list.Messages, func(_ mailbox.Message, raw []byte, err error) error {
			n += len(raw)
			return err
		})
		if err != nil || int64(n) != total {
			b.Fatalf("Stream: %v, %d of %d bytes", err, n, total)
		}
	}
}
