package mailbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/mailbox/mailboxtest"
)

const (
	user      = "support@example.com"
	goodToken = "good-token"
)

type testBundle struct {
	srv  *mailboxtest.IMAPServer
	acct mailbox.Account
	opts *mailbox.Options
}

func setup(t *testing.T, security string) *testBundle {
	t.Helper()
	return setupWith(t, mailboxtest.IMAPOptions{Security: security})
}

func setupWith(t *testing.T, opts mailboxtest.IMAPOptions) *testBundle {
	t.Helper()
	security := opts.Security
	srv, err := mailboxtest.StartIMAP(mailboxtest.IMAPOptions{
		Security:   security,
		NoMove:     opts.NoMove,
		CheckToken: func(u, tok string) bool { return u == user && tok == goodToken },
	})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.AddUser(user, "secret-password")
	sec := map[string]mailbox.Security{"tls": mailbox.TLS, "starttls": mailbox.StartTLS, "plain": mailbox.Plain}[security]
	return &testBundle{
		srv: srv,
		acct: mailbox.Account{
			Protocol: "imap", Host: srv.Host(), Port: srv.Port(), Security: sec,
			Username: user, AccessToken: goodToken, AllowPlaintext: sec == mailbox.Plain,
		},
		opts: &mailbox.Options{TLSConfig: &tls.Config{RootCAs: srv.Cert.Pool}, CommandTimeout: 5 * time.Second},
	}
}

func message(i int) []byte {
	return []byte(fmt.Sprintf("From: a%d@example.org\r\nSubject: test %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n.line starting with a dot\r\nbody %d\r\n", i, i, i, i))
}

func open(t *testing.T, b *testBundle) mailbox.Session {
	t.Helper()
	s, err := mailbox.Open(context.Background(), b.acct, b.opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestIMAPListFetchApply(t *testing.T) {
	t.Parallel()
	for _, security := range []string{"tls", "starttls", "plain"} {
		t.Run(security, func(t *testing.T) {
			t.Parallel()
			b := setup(t, security)
			for i := 1; i <= 3; i++ {
				_, err := b.srv.Deliver(user, "INBOX", message(i))
				require.NoError(t, err)
			}
			s := open(t, b)
			ctx := context.Background()

			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)
			require.Len(t, list.Messages, 3)
			require.True(t, strings.HasPrefix(list.Messages[0].Key, list.KeyPrefix), "Key = %q", list.Messages[0].Key)

			raw, err := s.Fetch(ctx, list.Messages[1])
			require.NoError(t, err)
			require.Equal(t, message(2), raw, "Fetch() must return the bytes unchanged")

			// Nothing above the cursor: nothing listed, even though n:* always
			// matches the highest UID.
			again, err := s.List(ctx, list.Messages[2].Cursor)
			require.NoError(t, err)
			require.Empty(t, again.Messages)

			apply(t, s, ctx, mailbox.MarkSeen, "", []string{list.Messages[0].Key})
			flags := folderFlags(t, b, "INBOX")
			require.Contains(t, flags[1], imap.FlagSeen)
			require.NotContains(t, flags[2], imap.FlagSeen, "Fetch must not set \\Seen")
		})
	}
}

func TestIMAPMoveAndDelete(t *testing.T) {
	t.Parallel()
	for _, noMove := range []bool{false, true} {
		t.Run(fmt.Sprintf("noMove=%v", noMove), func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, mailboxtest.IMAPOptions{Security: "tls", NoMove: noMove})
			for i := 1; i <= 3; i++ {
				_, err := b.srv.Deliver(user, "INBOX", message(i))
				require.NoError(t, err)
			}
			require.NoError(t, b.srv.CreateFolder(user, "Done"))
			s := open(t, b)
			ctx := context.Background()
			list, err := s.List(ctx, mailbox.Cursor{})
			require.NoError(t, err)

			apply(t, s, ctx, mailbox.Move, "Done", []string{list.Messages[0].Key})
			apply(t, s, ctx, mailbox.Delete, "", []string{list.Messages[1].Key})
			// Applying again, or to a key of another folder, is harmless.
			apply(t, s, ctx, mailbox.Delete, "", []string{list.Messages[1].Key, "imap:Other:1:3"})

			require.Len(t, folderFlags(t, b, "INBOX"), 1)
			require.Len(t, folderFlags(t, b, "Done"), 1)

			_, err = s.Apply(ctx, mailbox.Move, "Missing", []string{list.Messages[2].Key})
			require.Error(t, err, "move to a missing folder must fail")
			require.Len(t, folderFlags(t, b, "INBOX"), 1, "a failed move must not delete the message")
		})
	}
}

// TestGoIMAPMoveFallbackLosesMail proves why imapSession.move does not use
// imapclient.Move on servers without MOVE: go-imap pipelines COPY, STORE
// \Deleted and EXPUNGE, so when COPY fails the message is deleted anyway.
// See docs/decisions/0002-imap-move-without-move-extension.md.
func TestGoIMAPMoveFallbackLosesMail(t *testing.T) {
	t.Parallel()
	b := setupWith(t, mailboxtest.IMAPOptions{Security: "tls", NoMove: true})
	_, err := b.srv.Deliver(user, "INBOX", message(1))
	require.NoError(t, err)
	c, err := imapclient.DialTLS(b.srv.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: b.srv.Cert.Pool}})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, "secret-password").Wait())
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	_, err = c.Move(imap.UIDSetNum(1), "Missing").Wait()
	require.Error(t, err, "COPY to a missing folder fails")
	// Wait returned at the failed COPY; the pipelined STORE and EXPUNGE
	// complete before a NOOP sent after them does.
	require.NoError(t, c.Noop().Wait())
	require.Empty(t, folderFlags(t, b, "INBOX"), "go-imap's fallback deleted the message although COPY failed")
}

func TestIMAPUIDValidityChange(t *testing.T) {
	t.Parallel()
	b := setup(t, "tls")
	_, err := b.srv.Deliver(user, "INBOX", message(1))
	require.NoError(t, err)
	s := open(t, b)
	list, err := s.List(context.Background(), mailbox.Cursor{UIDValidity: 999999, LastUID: 50})
	require.NoError(t, err)
	require.Len(t, list.Messages, 1, "a new UIDVALIDITY makes every message new")
	require.Zero(t, list.Cursor.LastUID)
}

func TestIMAPLoginRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		pass  string
		mech  string
	}{
		{name: "bad token", token: "expired-token", mech: "XOAUTH2"},
		{name: "bad password", pass: "wrong", mech: "LOGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "tls")
			b.acct.AccessToken, b.acct.Password = tt.token, tt.pass
			_, err := mailbox.Open(context.Background(), b.acct, b.opts)
			require.Error(t, err)
			require.True(t, mailbox.IsAuth(err), "IsAuth(%v) = false", err)
			require.False(t, mailbox.IsTemporary(err))
			require.Contains(t, err.Error(), tt.mech)
			require.NotContains(t, err.Error(), tt.token+tt.pass)
			require.Eventually(t, func() bool { return b.srv.OpenConns() == 0 }, 2*time.Second, 10*time.Millisecond, "connection leaked")
		})
	}
}

func TestIMAPPasswordLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, "tls")
	b.acct.AccessToken, b.acct.Password = "", "secret-password"
	s := open(t, b)
	_, err := s.List(context.Background(), mailbox.Cursor{})
	require.NoError(t, err)
}

func TestIMAPContextCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, "tls")
	s := open(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.List(ctx, mailbox.Cursor{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestDebugTraceRedacted(t *testing.T) {
	t.Parallel()
	b := setup(t, "tls")
	var trace bytes.Buffer
	b.opts.DebugWriter = &trace
	s := open(t, b)
	_, err := s.List(context.Background(), mailbox.Cursor{})
	require.NoError(t, err)
	require.Contains(t, trace.String(), "AUTHENTICATE XOAUTH2")
	require.NotContains(t, trace.String(), goodToken)
	require.NotContains(t, trace.String(), "Z29vZC10b2tlbg") // base64 of the token
}

// folderFlags lists a folder's messages (by sequence number) with their
// flags, read with a separate client as another user of the mailbox would.
func folderFlags(t *testing.T, b *testBundle, folder string) map[uint32][]imap.Flag {
	t.Helper()
	copts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: b.srv.Cert.Pool}}
	dial := map[mailbox.Security]func(string, *imapclient.Options) (*imapclient.Client, error){
		mailbox.TLS: imapclient.DialTLS, mailbox.StartTLS: imapclient.DialStartTLS, mailbox.Plain: imapclient.DialInsecure,
	}[b.acct.Security]
	c, err := dial(b.srv.Addr, copts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, "secret-password").Wait())
	_, err = c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	out := map[uint32][]imap.Flag{}
	for _, m := range msgs {
		out[m.SeqNum] = m.Flags
	}
	return out
}

// apply runs Apply and checks that IMAP reports every key as done at once.
func apply(t *testing.T, s mailbox.Session, ctx context.Context, action mailbox.Action, target string, keys []string) {
	t.Helper()
	done, err := s.Apply(ctx, action, target, keys)
	require.NoError(t, err)
	require.Equal(t, keys, done)
}
