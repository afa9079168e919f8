package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

const pop3Password = "secret-password"

type pop3Bundle struct {
	srv  *mailboxtest.POP3Server
	acct mailbox.Account
	opts *mailbox.Options
}

// setupPOP3 starts a server with one user, and checks at cleanup, after
// the test's sessions are closed, that no connection was left open.
func setupPOP3(t *testing.T, opts mailboxtest.POP3Options) *pop3Bundle {
	t.Helper()
	opts.CheckToken = func(u, tok string) bool { return u == user && tok == goodToken }
	srv, err := mailboxtest.StartPOP3(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(func() { requireNoPOP3Conns(t, srv) })
	srv.AddUser(user, pop3Password)
	sec := map[string]mailbox.Security{"": mailbox.TLS, "tls": mailbox.TLS, "starttls": mailbox.StartTLS, "plain": mailbox.Plain}[opts.Security]
	return &pop3Bundle{
		srv: srv,
		acct: mailbox.Account{
			Protocol: "pop3", Host: srv.Host(), Port: srv.Port(), Security: sec,
			Username: user, AccessToken: goodToken, AllowPlaintext: sec == mailbox.Plain,
		},
		opts: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 5 * time.Second},
	}
}

func requireNoPOP3Conns(t *testing.T, srv *mailboxtest.POP3Server) {
	t.Helper()
	require.Eventually(t, func() bool { return srv.OpenConns() == 0 }, 2*time.Second, 5*time.Millisecond,
		"connection leaked: %d open", srv.OpenConns())
}

func openPOP3(t *testing.T, b *pop3Bundle) mailbox.Session {
	t.Helper()
	s, err := mailbox.Open(context.Background(), b.acct, b.opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func deliver(t *testing.T, b *pop3Bundle, raw []byte) string {
	t.Helper()
	uidl, err := b.srv.Deliver(user, raw)
	require.NoError(t, err)
	return uidl
}

func TestPOP3FetchByteExact(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 1000) // one 10,000-character line
	tests := []struct {
		name string
		raw  string
		// want is what Fetch returns when it differs from raw.
		want string
	}{
		{name: "dot lines", raw: "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n. \r\n.\r\nend\r\n"},
		{name: "line that is a dot", raw: "Subject: dot\r\n\r\n.\r\n"},
		{name: "10000-character line", raw: "Subject: long\r\n\r\n" + long + "\r\n." + long + "\r\n"},
		{name: "8-bit", raw: "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nGrüße \xff\xfe\x00\x01 \r\nbare\rCR\r\n"},
		{name: "bare LF kept", raw: "Subject: lf\n\n.dot after LF\nline\n"},
		// The server must end the message with CRLF to put "." on a line
		// of its own (RFC 1939 section 3); the client cannot tell that CRLF
		// from the message's own, so it is stored.
		{name: "no final CRLF", raw: "Subject: no CRLF\r\n\r\nlast line", want: "Subject: no CRLF\r\n\r\nlast line\r\n"},
		{name: "no final CRLF, dot", raw: "Subject: x\r\n\r\n.", want: "Subject: x\r\n\r\n.\r\n"},
	}
	b := setupPOP3(t, mailboxtest.POP3Options{})
	uidls := make([]string, len(tests))
	for i, tt := range tests {
		uidls[i] = deliver(t, b, []byte(tt.raw))
	}
	s := openPOP3(t, b)
	ctx := context.Background()
	list, err := s.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	require.Equal(t, "pop3:", list.KeyPrefix)
	require.True(t, list.Complete, "a POP3 listing holds the whole maildrop")
	require.Zero(t, list.Cursor)
	require.Len(t, list.Messages, len(tests))
	for i, tt := range tests {
		m := list.Messages[i]
		require.Equal(t, "pop3:"+uidls[i], m.Key, "messages are listed oldest first")
		require.Equal(t, uint32(i+1), m.UID)
		require.Equal(t, int64(len(tt.raw)), m.Size, "%s: Size", tt.name)
		raw, err := s.Fetch(ctx, m)
		require.NoError(t, err, tt.name)
		want := tt.want
		if want == "" {
			want = tt.raw
		}
		require.True(t, bytes.Equal([]byte(want), raw), "%s: Fetch() = %q, want %q", tt.name, truncated(raw), truncated([]byte(want)))
	}
	require.Len(t, b.srv.Messages(user), len(tests), "List and Fetch change nothing")
}

func truncated(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "…"...)
	}
	return b
}

func TestPOP3Security(t *testing.T) {
	t.Parallel()
	for _, security := range []string{"tls", "starttls", "plain"} {
		for _, login := range []string{"XOAUTH2", "USER/PASS"} {
			t.Run(security+"/"+login, func(t *testing.T) {
				t.Parallel()
				b := setupPOP3(t, mailboxtest.POP3Options{Security: security})
				if login == "USER/PASS" {
					b.acct.AccessToken, b.acct.Password = "", pop3Password
				}
				raw := message(1)
				deliver(t, b, raw)
				s := openPOP3(t, b)
				list, err := s.List(context.Background(), mailbox.Cursor{})
				require.NoError(t, err)
				require.Len(t, list.Messages, 1)
				got, err := s.Fetch(context.Background(), list.Messages[0])
				require.NoError(t, err)
				require.Equal(t, raw, got)
				require.NoError(t, s.Close())
			})
		}
	}
}

// TestPOP3RefusedSTLS: a server that does not do STLS must not get the
// credentials in clear.
func TestPOP3RefusedSTLS(t *testing.T) {
	t.Parallel()
	b := setupPOP3(t, mailboxtest.POP3Options{Security: "plain"})
	b.acct.Security = mailbox.StartTLS
	var trace bytes.Buffer
	b.opts.DebugWriter = &trace
	_, err := mailbox.Open(context.Background(), b.acct, b.opts)
	require.ErrorContains(t, err, "refused STLS")
	require.False(t, mailbox.IsAuth(err))
	require.Zero(t, b.srv.Logins())
	require.NotContains(t, trace.String(), "AUTH")
}

func TestPOP3LoginRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		token      string
		pass       string
		mech       string
		serverText string
		detail     string
	}{
		{name: "bad token", token: "expired-token", mech: "XOAUTH2",
			serverText: "-ERR Authentication failure: unknown user name or bad password.",
			detail:     "status 401, wanted scope https://outlook.office.com/POP.AccessAsUser.All"},
		{name: "bad password", pass: "wrong", mech: "USER/PASS", serverText: "-ERR [AUTH] Authentication failed."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupPOP3(t, mailboxtest.POP3Options{})
			b.acct.AccessToken, b.acct.Password = tt.token, tt.pass
			var trace bytes.Buffer
			b.opts.DebugWriter = &trace
			_, err := mailbox.Open(context.Background(), b.acct, b.opts)
			var ae *mailbox.AuthError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tt.mech, ae.Mechanism)
			require.Equal(t, user, ae.Username)
			require.Equal(t, tt.serverText, ae.ServerText)
			require.Equal(t, tt.detail, ae.Detail)
			require.False(t, mailbox.IsTemporary(err))
			require.NotContains(t, err.Error(), tt.token+tt.pass)
			if tt.mech == "XOAUTH2" {
				// The challenge was answered with an empty line.
				require.Contains(t, trace.String(), "\n+ eyJ")
				require.Contains(t, trace.String(), "\n\n-ERR Authentication failure")
			}
		})
	}
}

// TestPOP3MaildropInUse: a second session on a locked maildrop gets
// "-ERR [IN-USE]" (RFC 2449 section 8.1.1): try again later, no one needs
// to fix the credentials.
func TestPOP3MaildropInUse(t *testing.T) {
	t.Parallel()
	for _, login := range []string{"XOAUTH2", "USER/PASS"} {
		t.Run(login, func(t *testing.T) {
			t.Parallel()
			b := setupPOP3(t, mailboxtest.POP3Options{})
			if login == "USER/PASS" {
				b.acct.AccessToken, b.acct.Password = "", pop3Password
			}
			openPOP3(t, b)
			_, err := mailbox.Open(context.Background(), b.acct, b.opts)
			require.ErrorContains(t, err, "[IN-USE]")
			require.False(t, mailbox.IsAuth(err), "IsAuth(%v) = true", err)
			require.True(t, mailbox.IsTemporary(err), "IsTemporary(%v) = false", err)
		})
	}
}

func TestPOP3DeleteAtQuit(t *testing.T) {
	t.Parallel()
	for _, pipelining := range []bool{false, true} {
		t.Run(map[bool]string{false: "one by one", true: "pipelined"}[pipelining], func(t *testing.T) {
			t.Parallel()
			b := setupPOP3(t, mailboxtest.POP3Options{Pipelining: pipelining})
			var uidls []string
			for i := 1; i <= 4; i++ {
				uidls = append(uidls, deliver(t, b, message(i)))
			}
			s, err := mailbox.Open(context.Background(), b.acct, b.opts)
			require.NoError(t, err)
			ctx := context.Background()
			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)

			keys := []string{list.Messages[0].Key, list.Messages[1].Key, list.Messages[2].Key, "pop3:not-here", "imap:INBOX:1:1"}
			done, err := s.Apply(ctx, mailbox.Delete, "", keys)
			require.NoError(t, err)
			require.Empty(t, done, "a DELE takes effect only at QUIT")
			// Applying again is harmless: marked messages are skipped.
			done, err = s.Apply(ctx, mailbox.Delete, "", keys[:1])
			require.NoError(t, err)
			require.Empty(t, done)
			_, err = s.Fetch(ctx, list.Messages[0])
			require.ErrorIs(t, err, mailbox.ErrGone, "a marked message is gone for this session")
			again, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, again.Messages, 1)
			require.False(t, again.Complete, "marked messages are still on the server until QUIT")
			require.Len(t, b.srv.Messages(user), 4, "nothing is deleted before QUIT")

			require.NoError(t, s.Close())
			require.Equal(t, uidls[3:], b.srv.Messages(user))
			if pipelining {
				require.Positive(t, b.srv.Pipelined(), "DELEs must be pipelined when the server offers PIPELINING")
			} else {
				require.Zero(t, b.srv.Pipelined(), "commands must wait for replies without PIPELINING")
			}
		})
	}
}

func TestPOP3ApplyOtherActions(t *testing.T) {
	t.Parallel()
	b := setupPOP3(t, mailboxtest.POP3Options{})
	deliver(t, b, message(1))
	s := openPOP3(t, b)
	ctx := context.Background()
	list, err := s.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	keys := []string{list.Messages[0].Key}
	done, err := s.Apply(ctx, mailbox.Keep, "", keys)
	require.NoError(t, err)
	require.Equal(t, keys, done)
	for _, action := range []mailbox.Action{mailbox.MarkSeen, mailbox.Move} {
		_, err := s.Apply(ctx, action, "Done", keys)
		require.ErrorContains(t, err, "POP3 supports only keep and delete")
	}
	require.NoError(t, s.Close())
	require.Len(t, b.srv.Messages(user), 1)
}

// TestPOP3DropMidRETR: a connection cut in the middle of a message returns
// no bytes, deletes nothing (not even what DELE marked before), and the
// next session reads the message whole.
func TestPOP3DropMidRETR(t *testing.T) {
	t.Parallel()
	b := setupPOP3(t, mailboxtest.POP3Options{})
	raw := []byte("Subject: big\r\n\r\n" + strings.Repeat("a line of the message body\r\n", 2000))
	uidls := []string{deliver(t, b, message(1)), deliver(t, b, raw)}
	ctx := context.Background()

	s, err := mailbox.Open(ctx, b.acct, b.opts)
	require.NoError(t, err)
	list, err := s.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	_, err = s.Apply(ctx, mailbox.Delete, "", []string{list.Messages[0].Key})
	require.NoError(t, err)
	b.srv.SetDropMidRETR(true)
	got, err := s.Fetch(ctx, list.Messages[1])
	var ne *mailbox.NetError
	require.ErrorAs(t, err, &ne)
	require.True(t, mailbox.IsTemporary(err))
	require.Nil(t, got, "nothing partial may be returned")
	_, err = s.List(ctx, mailbox.Cursor{})
	require.Error(t, err, "the session is over once its connection failed")
	require.Error(t, s.Close(), "Close must report that QUIT was not sent")
	requireNoPOP3Conns(t, b.srv)
	require.Equal(t, uidls, b.srv.Messages(user), "a dropped connection deletes nothing")

	b.srv.SetDropMidRETR(false)
	s = openPOP3(t, b)
	list, err = s.List(ctx, mailbox.Cursor{})
	require.NoError(t, err)
	require.Len(t, list.Messages, 2)
	got, err = s.Fetch(ctx, list.Messages[1])
	require.NoError(t, err)
	require.Equal(t, raw, got)
}

func TestPOP3WithoutUIDL(t *testing.T) {
	t.Parallel()
	b := setupPOP3(t, mailboxtest.POP3Options{NoUIDL: true})
	deliver(t, b, message(1))
	s := openPOP3(t, b)
	_, err := s.List(context.Background(), mailbox.Cursor{})
	require.ErrorContains(t, err, "does not offer UIDL")
	require.False(t, mailbox.IsTemporary(err))
}

func TestPOP3FetchUnknownKey(t *testing.T) {
	t.Parallel()
	b := setupPOP3(t, mailboxtest.POP3Options{})
	deliver(t, b, message(1))
	s := openPOP3(t, b)
	// Message 1 exists, but under another key: Fetch goes by key, never
	// by a number from another session.
	_, err := s.Fetch(context.Background(), mailbox.Message{Key: "pop3:gone", UID: 1})
	require.ErrorIs(t, err, mailbox.ErrGone)
}

func TestPOP3TokenExpiredMidSession(t *testing.T) {
	t.Parallel()
	var expired atomic.Bool
	b := setupPOP3(t, mailboxtest.POP3Options{SessionValid: func(string, string) bool { return !expired.Load() }})
	deliver(t, b, message(1))
	s := openPOP3(t, b)
	list, err := s.List(context.Background(), mailbox.Cursor{})
	require.NoError(t, err)
	expired.Store(true)
	_, err = s.Fetch(context.Background(), list.Messages[0])
	require.True(t, mailbox.TokenExpired(err), "TokenExpired(%v) = false", err)
}

func TestPOP3ContextCancel(t *testing.T) {
	t.Parallel()
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		b := setupPOP3(t, mailboxtest.POP3Options{})
		s := openPOP3(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.List(ctx, mailbox.Cursor{})
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("during", func(t *testing.T) {
		t.Parallel()
		b := setupPOP3(t, mailboxtest.POP3Options{StallOn: "RETR"})
		deliver(t, b, message(1))
		s := openPOP3(t, b)
		list, err := s.List(context.Background(), mailbox.Cursor{})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = s.Fetch(ctx, list.Messages[0])
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 2*time.Second, "ctx must end the call")
	})
}

func TestPOP3CommandTimeout(t *testing.T) {
	t.Parallel()
	for _, stallOn := range []string{"AUTH", "PASS", "UIDL", "RETR", "DELE", "QUIT"} {
		t.Run(stallOn, func(t *testing.T) {
			t.Parallel()
			b := setupPOP3(t, mailboxtest.POP3Options{StallOn: stallOn})
			if stallOn == "PASS" {
				b.acct.AccessToken, b.acct.Password = "", pop3Password
			}
			deliver(t, b, message(1))
			b.opts.CommandTimeout = 300 * time.Millisecond
			ctx := context.Background()
			start := time.Now()
			err := func() error {
				s, err := mailbox.Open(ctx, b.acct, b.opts)
				if err != nil {
					return err
				}
				list, err := s.List(ctx, mailbox.Cursor{})
				if err == nil {
					_, err = s.Fetch(ctx, list.Messages[0])
				}
				if err == nil {
					_, err = s.Apply(ctx, mailbox.Delete, "", []string{list.Messages[0].Key})
				}
				return errors.Join(err, s.Close())
			}()
			require.Error(t, err)
			require.True(t, mailbox.IsTemporary(err), "a stalled server is worth retrying: %v", err)
			require.Less(t, time.Since(start), 5*time.Second, "the command deadline must end the wait")
		})
	}
}

func TestPOP3TraceRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		pass   string
		want   []string
		secret []string
	}{
		{name: "XOAUTH2", token: goodToken,
			want:   []string{"AUTH XOAUTH2\n", "\n[redacted]\n"},
			secret: []string{goodToken, base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, goodToken))}},
		{name: "USER/PASS", pass: pop3Password,
			want:   []string{"USER [redacted]\n", "PASS [redacted]\n"},
			secret: []string{pop3Password}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupPOP3(t, mailboxtest.POP3Options{})
			b.acct.AccessToken, b.acct.Password = tt.token, tt.pass
			var trace bytes.Buffer
			b.opts.DebugWriter = &trace
			s := openPOP3(t, b)
			_, err := s.List(context.Background(), mailbox.Cursor{})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			for _, w := range append(tt.want, "UIDL\n", "QUIT\n") {
				require.Contains(t, trace.String(), w)
			}
			for _, secret := range tt.secret {
				require.NotContains(t, trace.String(), secret)
			}
		})
	}
}
