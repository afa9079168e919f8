package mailbox

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapSession is a Session over IMAP (RFC 9051, RFC 3501) using
// emersion/go-imap v2.
type imapSession struct {
	acct   Account
	conn   *deadlineConn
	c      *imapclient.Client
	folder string
	// selected is the folder's state from SELECT, nil until List.
	selected *imap.SelectData
	// secure is set once the connection is encrypted: implicit TLS, or a
	// STARTTLS upgrade whose handshake completed.
	secure bool
}

var _ Session = (*imapSession)(nil)

func openIMAP(ctx context.Context, acct Account, opts *Options) (*imapSession, error) {
	conn, err := dial(ctx, acct, opts)
	if err != nil {
		return nil, err
	}
	s := &imapSession{acct: acct, conn: conn, folder: acct.Folder}
	if s.folder == "" {
		s.folder = "INBOX"
	}
	err = s.run(ctx, func() error { return s.start(acct, opts) })
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

// start reads the greeting, upgrades with STARTTLS when asked, and logs in.
func (s *imapSession) start(acct Account, opts *Options) error {
	// The trace is taken at our own conn, not through copts.DebugWriter:
	// see traceConn.
	copts := &imapclient.Options{TLSConfig: opts.tlsConfig(acct.Host)}
	trace := newIMAPTrace(opts, acct)
	if acct.Security == StartTLS {
		tc, err := startTLS(traced(s.conn, trace), s.conn, opts.tlsConfig(acct.Host))
		if err != nil {
			return startTLSError(acct, err)
		}
		s.c, s.secure = imapclient.New(&prefixConn{Conn: traced(tc, trace), prefix: []byte(startTLSGreeting)}, copts), true
	} else {
		s.c = imapclient.New(traced(s.conn, trace), copts)
		s.secure = acct.Security == TLS
	}
	if err := s.c.WaitGreeting(); err != nil {
		return &NetError{Op: "read greeting of " + acct.addr(), Err: err}
	}
	return s.login()
}

// startTLSError describes a STARTTLS that did not give an encrypted
// connection. Either way the session ends before any login: going on
// without the TLS the account asks for would send the credentials in clear
// (RFC 2595 section 2.2).
func startTLSError(acct Account, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("%s refused STARTTLS, so the login is not sent in clear: %s (use implicit TLS on port 993 if the server offers it)",
			acct.addr(), imapErrorText(ie))
	}
	if problem, _ := tlsProblem(err); problem != 0 {
		return tlsError(acct, err)
	}
	var ne *NetError
	if errors.As(err, &ne) {
		ne.Op += " of " + acct.addr()
		return ne
	}
	return &NetError{Op: "STARTTLS with " + acct.addr(), Err: err}
}

func (s *imapSession) login() error {
	mech := XOAUTH2
	if s.acct.AccessToken == "" {
		mech = "LOGIN"
	}
	if !s.secure && !s.acct.AllowPlaintext {
		return plaintextError(s.acct, mech)
	}
	if s.c.State() == imap.ConnStateAuthenticated {
		return nil // PREAUTH over implicit TLS
	}
	if s.acct.AccessToken == "" {
		err := s.c.Login(s.acct.Username, s.acct.Password).Wait()
		return hideCredentials(loginError(err, mech, s.acct.Username, nil), s.acct)
	}
	sc := &xoauth2Client{username: s.acct.Username, token: s.acct.AccessToken}
	err := authenticateIMAP(s.c, sc)
	return hideCredentials(loginError(err, mech, s.acct.Username, sc.challenge), s.acct)
}

// loginError tells a refused login (a person must act) from a broken
// connection (retry later).
func loginError(err error, mech, user string, challenge []byte) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeUnavailable {
		// RFC 5530: the server's authentication backend is down; nothing is
		// wrong with the credentials.
		return &NetError{Op: mech + " login", Err: err}
	}
	if errors.As(err, &ie) {
		return &AuthError{
			Mechanism: mech, Username: user,
			ServerText: imapErrorText(ie), Detail: describeChallenge(challenge),
		}
	}
	return &NetError{Op: mech + " login", Err: err}
}

func imapErrorText(e *imap.Error) string {
	s := string(e.Type)
	if e.Code != "" {
		s += " [" + string(e.Code) + "]"
	}
	return s + " " + e.Text
}

// run executes fn as one bounded exchange: the command deadline is armed
// for its length, and ctx ending closes the connection so fn returns.
func (s *imapSession) run(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.conn.arm()
	defer s.conn.disarm()
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	err := fn()
	if !stop() {
		return fmt.Errorf("%s: %w", s.acct.addr(), ctx.Err())
	}
	var ne *NetError
	if errors.As(err, &ne) && ne.Bye == "" {
		ne.Bye = s.conn.bye()
	}
	return err
}

// List selects the folder and returns the UIDs above since.LastUID, or all
// of them when the folder's UIDVALIDITY is not since's.
func (s *imapSession) List(ctx context.Context, since Cursor) (Listing, error) {
	var out Listing
	err := s.run(ctx, func() error {
		if err := s.selectFolder(); err != nil {
			return err
		}
		var err error
		out, err = s.list(since)
		return err
	})
	return out, err
}

func (s *imapSession) selectFolder() error {
	data, err := s.c.Select(s.folder, nil).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return fmt.Errorf("open folder %q: %s", s.folder, imapErrorText(ie))
		}
		return &NetError{Op: fmt.Sprintf("open folder %q", s.folder), Err: err}
	}
	s.selected = data
	return nil
}

func (s *imapSession) list(since Cursor) (Listing, error) {
	cur := Cursor{UIDValidity: s.selected.UIDValidity, LastUID: since.LastUID}
	if since.UIDValidity != cur.UIDValidity {
		// The server renumbered the folder (RFC 9051 section 2.3.1.1): every
		// message is new to the UID cursor. The ledger and the Message-ID
		// guard keep already stored ones from doubling.
		cur.LastUID = 0
	}
	out := Listing{Cursor: cur, KeyPrefix: s.keyPrefix()}
	if s.selected.NumMessages == 0 || (s.selected.UIDNext != 0 && uint32(s.selected.UIDNext) <= cur.LastUID+1) {
		return out, nil
	}
	// "n:*" always includes the highest UID even when it is below n
	// (RFC 9051 section 6.4.9), hence the filter below.
	set := imap.UIDSet{imap.UIDRange{Start: imap.UID(cur.LastUID + 1), Stop: 0}}
	msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return out, &NetError{Op: "list new messages", Err: err}
	}
	for _, m := range msgs {
		uid := uint32(m.UID)
		if uid <= cur.LastUID {
			continue
		}
		out.Messages = append(out.Messages, Message{
			Key: out.KeyPrefix + strconv.FormatUint(uint64(uid), 10), UID: uid, Size: m.RFC822Size,
			Cursor: Cursor{UIDValidity: cur.UIDValidity, LastUID: uid},
		})
	}
	sortByUID(out.Messages)
	return out, nil
}

// keyPrefix is "imap:FOLDER:UIDVALIDITY:"; the UID follows. Parsed from
// the end, so a folder name may contain ':'.
func (s *imapSession) keyPrefix() string {
	return fmt.Sprintf("imap:%s:%d:", s.folder, s.selected.UIDValidity)
}

// Fetch returns BODY.PEEK[]: the whole message, byte for byte, without
// setting \Seen (RFC 9051 section 6.4.5).
func (s *imapSession) Fetch(ctx context.Context, msg Message) ([]byte, error) {
	return s.fetchSection(ctx, msg, &imap.FetchItemBodySection{Peek: true}, sizeCap{max: msg.MaxBytes})
}

// FetchHeader returns BODY.PEEK[HEADER] (RFC 9051 section 6.4.5), cut at
// MaxHeaderBytes.
func (s *imapSession) FetchHeader(ctx context.Context, msg Message) ([]byte, error) {
	section := &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader}
	return s.fetchSection(ctx, msg, section, sizeCap{max: MaxHeaderBytes, cut: true})
}

// fetchSection fetches one body section of msg within limit.
func (s *imapSession) fetchSection(ctx context.Context, msg Message, section *imap.FetchItemBodySection, limit sizeCap) ([]byte, error) {
	var raw []byte
	err := s.run(ctx, func() error {
		var err error
		raw, err = s.fetch(msg, section, limit)
		return err
	})
	return raw, err
}

func (s *imapSession) fetch(msg Message, section *imap.FetchItemBodySection, limit sizeCap) ([]byte, error) {
	cmd := s.c.Fetch(imap.UIDSetNum(imap.UID(msg.UID)), &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{section},
	})
	defer func() { _ = cmd.Close() }() // on early return; checked below
	var raw []byte
	found := false
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for item := m.Next(); item != nil; item = m.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || body.Literal == nil {
				continue
			}
			data, err := limit.read(body.Literal, msg.Size)
			var tooLarge *TooLargeError
			if errors.As(err, &tooLarge) {
				return nil, err // the deferred Close reads the rest of the response
			}
			if err != nil {
				s.abandon() // before the deferred Close reads the literal again
				return nil, &NetError{Op: fmt.Sprintf("read message UID %d", msg.UID), Err: err}
			}
			raw, found = data, true
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, &NetError{Op: fmt.Sprintf("fetch message UID %d", msg.UID), Err: err}
	}
	if !found {
		return nil, s.gone(msg.UID)
	}
	return raw, nil
}

// sizeCap is how much of a message or header to keep: all when max <= 0;
// else the first max bytes when cut, or, when not, a *TooLargeError for a
// longer one. Either way the rest is read off the connection, which must
// stay in step.
type sizeCap struct {
	max int64
	cut bool
}

// read reads r within the cap; size, the size the server listed, only
// sizes the buffer.
func (c sizeCap) read(r io.Reader, size int64) ([]byte, error) {
	presize := max(size, 0)
	if c.max > 0 {
		presize = min(presize, c.max)
	}
	buf := bytes.NewBuffer(make([]byte, 0, presize+1))
	if c.max <= 0 {
		_, err := buf.ReadFrom(r)
		return buf.Bytes(), err
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, c.max)); err != nil {
		return nil, err
	}
	rest, err := io.Copy(io.Discard, r)
	switch {
	case err != nil:
		return nil, err
	case rest > 0 && !c.cut:
		return nil, &TooLargeError{Size: c.max + rest, Limit: c.max}
	}
	return buf.Bytes(), nil
}

// gone tells a message that really left the folder from a server that
// answered a FETCH without its body: only the first may be skipped, since
// the cursor then moves past it for good.
func (s *imapSession) gone(uid uint32) error {
	data, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(imap.UID(uid))}}, nil).Wait()
	if err != nil {
		return &NetError{Op: fmt.Sprintf("check message UID %d", uid), Err: err}
	}
	if len(data.AllUIDs()) > 0 {
		return &NetError{Op: fmt.Sprintf("fetch message UID %d", uid),
			Err: errors.New("the server sent no body for a message it still lists")}
	}
	return fmt.Errorf("fetch message UID %d: %w", uid, ErrGone)
}

// Apply performs the after-fetch action on this folder's messages.
func (s *imapSession) Apply(ctx context.Context, action Action, target string, keys []string) ([]string, error) {
	uids := s.uidsOf(keys)
	if len(uids) == 0 || action == Keep {
		return keys, nil // nothing of this folder and UIDVALIDITY is left to act on
	}
	err := s.run(ctx, func() error {
		switch action {
		case MarkSeen:
			return s.addFlag(uids, imap.FlagSeen)
		case Delete:
			return s.delete(uids)
		case Move:
			return s.move(uids, target)
		}
		return fmt.Errorf("unknown after_fetch action %q", action)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// uidsOf picks the UIDs out of keys that belong to the selected folder
// under its current UIDVALIDITY.
func (s *imapSession) uidsOf(keys []string) imap.UIDSet {
	if s.selected == nil {
		return nil
	}
	prefix := s.keyPrefix()
	var set imap.UIDSet
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if uid, err := strconv.ParseUint(rest, 10, 32); err == nil {
			set.AddNum(imap.UID(uid))
		}
	}
	return set
}

func (s *imapSession) addFlag(uids imap.UIDSet, flag imap.Flag) error {
	err := s.c.Store(uids, &imap.StoreFlags{
		Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag},
	}, nil).Close()
	if err != nil {
		return fmt.Errorf("set %s on %s: %w", flag, uids, err)
	}
	return nil
}

// delete flags and expunges. Without UIDPLUS (RFC 4315) a plain EXPUNGE
// also removes messages someone else flagged \Deleted, as any client would.
func (s *imapSession) delete(uids imap.UIDSet) error {
	if err := s.addFlag(uids, imap.FlagDeleted); err != nil {
		return err
	}
	return s.expunge(uids)
}

func (s *imapSession) expunge(uids imap.UIDSet) error {
	var err error
	if s.c.Caps().Has(imap.CapUIDPlus) || s.c.Caps().Has(imap.CapIMAP4rev2) {
		err = s.c.UIDExpunge(uids).Close()
	} else {
		err = s.c.Expunge().Close()
	}
	if err != nil {
		return fmt.Errorf("expunge %s: %w", uids, err)
	}
	return nil
}

// move uses MOVE (RFC 6851) when offered. Otherwise it copies, and only
// once the COPY succeeded flags and expunges: go-imap's own fallback
// pipelines all three, so a failed COPY (say, a missing folder) would still
// delete the message.
func (s *imapSession) move(uids imap.UIDSet, target string) error {
	if target == "" {
		return errors.New("after_fetch is move but move_to_folder is empty")
	}
	caps := s.c.Caps()
	if caps.Has(imap.CapMove) || caps.Has(imap.CapIMAP4rev2) {
		if _, err := s.c.Move(uids, target).Wait(); err != nil {
			return fmt.Errorf("move %s to %q: %w", uids, target, err)
		}
		return nil
	}
	if _, err := s.c.Copy(uids, target).Wait(); err != nil {
		return fmt.Errorf("copy %s to %q: %w", uids, target, err)
	}
	return s.delete(uids)
}

// Close logs out and closes the connection. It does not wait for the
// server's BYE: everything the session changed (flags, EXPUNGE, MOVE) was
// confirmed by its own command's reply, and a pass over many mailboxes
// far from their server saves a round trip per mailbox (RFC 9051 section
// 6.1.3 has the server close the connection after its reply anyway).
func (s *imapSession) Close() error {
	s.conn.arm()
	_ = s.c.Logout()
	return s.c.Close()
}

// Abort closes the connection without LOGOUT.
func (s *imapSession) Abort() error { return s.c.Close() }

func sortByUID(msgs []Message) {
	slices.SortFunc(msgs, func(a, b Message) int { return cmp.Compare(a.UID, b.UID) })
}
