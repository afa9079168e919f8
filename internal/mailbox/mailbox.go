// Package mailbox reads messages from mail servers: it connects, logs in
// (SASL XOAUTH2 or a password), lists what is new since a cursor, fetches
// each message's bytes unchanged and, once the caller has stored them,
// applies the after-fetch action. One Session interface serves every
// protocol.
package mailbox

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// MaxHeaderBytes caps what FetchHeader returns: a header is a few KB, and
// a hostile one must not cost more memory than a whole message may.
const MaxHeaderBytes = 1 << 20

// Timeouts applied when Options leaves them zero.
const (
	DefaultDialTimeout    = 30 * time.Second
	DefaultCommandTimeout = 60 * time.Second
)

// Security is how a connection is encrypted.
type Security int

// Security modes.
const (
	// TLS encrypts from the first byte (ports 993, 995).
	TLS Security = iota
	// StartTLS upgrades a plain connection before login (ports 143, 110).
	StartTLS
	// Plain never encrypts: the login is refused unless the account sets
	// AllowPlaintext (a local test server).
	Plain
)

// String names the mode.
func (s Security) String() string {
	switch s {
	case TLS:
		return "tls"
	case StartTLS:
		return "starttls"
	case Plain:
		return "plain"
	}
	return fmt.Sprintf("security(%d)", int(s))
}

// Account is what a Session needs to reach one mailbox. It holds a secret,
// so it prints without it.
type Account struct {
	Protocol string // "imap" or "pop3"
	Host     string
	Port     int
	Security Security
	Username string
	// AccessToken, when set, logs in with SASL XOAUTH2; otherwise Password
	// is used.
	AccessToken string
	Password    string
	// Folder is the IMAP folder to read; "" means INBOX.
	Folder string
	// AllowPlaintext lets the login (password, token or XOAUTH2 string)
	// cross a connection that is not encrypted. Without it a session on a
	// Plain connection, or one whose STARTTLS failed, never sends any.
	AllowPlaintext bool
}

// String names the account without its secrets.
func (a Account) String() string {
	return fmt.Sprintf("%s://%s@%s", a.Protocol, a.Username, a.addr())
}

// LogValue keeps slog's JSON handler, which would marshal every field,
// from logging the secrets.
func (a Account) LogValue() slog.Value { return slog.StringValue(a.String()) }

func (a Account) addr() string { return net.JoinHostPort(a.Host, fmt.Sprint(a.Port)) }

// Options tune a connection. The zero value (or nil) is the defaults.
type Options struct {
	// TLSConfig overrides the TLS settings, e.g. RootCAs for a private CA.
	// It is cloned, never changed. ServerName is always set to the
	// account's host, and a MinVersion below TLS 1.2 is raised to it (RFC
	// 8996 deprecates 1.0 and 1.1).
	TLSConfig *tls.Config
	// DialTimeout bounds connecting and the TLS handshake.
	DialTimeout time.Duration
	// CommandTimeout bounds each command and is extended while a response
	// keeps arriving, so a large message on a slow link is not cut off.
	CommandTimeout time.Duration
	// DebugWriter, when set, receives the protocol trace. Authentication
	// lines are redacted before they reach it.
	DebugWriter io.Writer
}

func (o *Options) dialTimeout() time.Duration {
	if o == nil || o.DialTimeout == 0 {
		return DefaultDialTimeout
	}
	return o.DialTimeout
}

func (o *Options) commandTimeout() time.Duration {
	if o == nil || o.CommandTimeout == 0 {
		return DefaultCommandTimeout
	}
	return o.CommandTimeout
}

func (o *Options) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if o != nil && o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = host
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Cursor is how far a folder has been read: its UIDVALIDITY and the highest
// UID already stored (RFC 9051 section 2.3.1.1).
type Cursor struct {
	UIDValidity uint32
	LastUID     uint32
}

// Message is a message found on the server, not yet fetched.
type Message struct {
	// Key names the message on its server, stable across runs; it becomes
	// ticket_messages.source_key.
	Key  string
	UID  uint32
	Size int64
	// Cursor is the folder's cursor once this message is stored.
	Cursor Cursor
	// MaxBytes, when above 0, caps what Fetch keeps: a longer message is
	// read off the connection and dropped, and Fetch returns a
	// *TooLargeError. Size as listed is the server's word (Exchange's
	// RFC822.SIZE is an estimate); this holds whatever it says.
	MaxBytes int64
}

// TooLargeError is Fetch's answer for a message longer than MaxBytes.
type TooLargeError struct {
	// Size is the message's real length, counted as it was read.
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("message is %d bytes, over the limit of %d", e.Size, e.Limit)
}

// Listing is what List found.
type Listing struct {
	Messages []Message
	// Cursor is the folder's state now: the server's UIDVALIDITY and the
	// last UID already read (reset to 0 when UIDVALIDITY changed).
	Cursor Cursor
	// KeyPrefix starts the Key of every message of this folder under its
	// current UIDVALIDITY; stored keys with it may still owe an action.
	KeyPrefix string
	// Complete reports that Messages lists every message on the server
	// (POP3 lists the whole maildrop), so a stored key with KeyPrefix that
	// is missing from it is gone from the server. An IMAP listing holds
	// only the UIDs above the cursor.
	Complete bool
}

// Action is what to do with a message on the server once it is stored
// (mailboxes.after_fetch).
type Action string

// Actions.
const (
	Keep     Action = "keep"
	MarkSeen Action = "mark_seen"
	Move     Action = "move"
	Delete   Action = "delete"
)

// Session is a logged-in connection to one mailbox.
//
// Contract: List and Fetch never change anything on the server (no \Seen,
// no expunge); only Apply does, and the caller calls it only for messages
// whose rows are committed. Every method honours ctx: when ctx ends the
// connection is closed and the call returns ctx's error.
type Session interface {
	// List returns the messages newer than since, oldest first.
	List(ctx context.Context, since Cursor) (Listing, error)
	// Fetch returns the message's bytes exactly as the server holds them.
	// It returns an error wrapping ErrGone when the message no longer
	// exists.
	Fetch(ctx context.Context, msg Message) ([]byte, error)
	// Stream fetches msgs with as few round trips as the protocol allows
	// (one UID FETCH for IMAP; pipelined RETRs for a POP3 server that
	// offers PIPELINING) and calls got with each message's bytes, one at a
	// time and in the order of msgs. A message that vanished comes with an
	// error wrapping ErrGone, one over its MaxBytes with a *TooLargeError;
	// got decides whether to go on. Stream stops at got's first error and
	// returns it; the session stays usable. raw belongs to got: Stream
	// keeps no message once got has it, so it holds one message at a time,
	// not len(msgs) (more only when an IMAP server answers out of order: a
	// message is held until those before it have come). Like Fetch it
	// changes nothing on the server.
	Stream(ctx context.Context, msgs []Message, got func(msg Message, raw []byte, err error) error) error
	// FetchHeader returns the message's header, at most MaxHeaderBytes of
	// it, for a message too large to fetch whole. Like Fetch it changes
	// nothing on the server.
	FetchHeader(ctx context.Context, msg Message) ([]byte, error)
	// Apply performs action on the messages named by keys. Keys of another
	// folder or UIDVALIDITY, and messages already gone, are skipped:
	// applying an action twice is harmless. For Move, target names the
	// destination folder. It returns the keys whose action is in effect on
	// the server now: POP3 returns none, because a DELE takes effect only
	// when QUIT ends the session (RFC 1939 section 6); those are confirmed
	// when a later Complete listing no longer holds them.
	Apply(ctx context.Context, action Action, target string, keys []string) (done []string, err error)
	// Close logs out and closes the connection.
	Close() error
	// Abort closes the connection without logging out, for a session in
	// which a fetched message could not be stored: POP3's QUIT would apply
	// the session's deletions and make servers such as Gmail treat every
	// retrieved message as downloaded, never to list it again.
	Abort() error
}

// Open connects to the account's server and logs in.
func Open(ctx context.Context, acct Account, opts *Options) (Session, error) {
	switch acct.Protocol {
	case "imap":
		return openIMAP(ctx, acct, opts)
	case "pop3":
		return openPOP3(ctx, acct, opts)
	default:
		return nil, fmt.Errorf("protocol %q is not supported: use imap or pop3", acct.Protocol)
	}
}
