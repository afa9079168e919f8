package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/ticket"
)

// Config is every setting of the fetcher. Defaults come from
// DefaultConfig, then FETCHER_* (and DATABASE_URL) environment variables,
// then flags.
type Config struct {
	// DatabaseURL: postgres://… for Postgres; sqlite:PATH or "" for the
	// embedded database (fetcher.db in the working directory).
	DatabaseURL string
	// Interval between passes of `run`.
	Interval time.Duration
	// MailboxTimeout bounds one mailbox's part of a pass.
	MailboxTimeout time.Duration
	// AutoMigrate applies pending migrations when `run` starts.
	AutoMigrate bool
	// LogFormat is "text", "json" or "auto" (text on a terminal).
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Progress is "auto" (live progress per mailbox on a terminal whose
	// log format is auto, log lines only elsewhere), "always" or "never".
	Progress string
	// Concurrency is how many mailboxes a worker fetches at once.
	Concurrency int
	// DialTimeout bounds connecting to a mail server and the TLS
	// handshake; CommandTimeout bounds each command, login included, and
	// each silence while a message is being read.
	DialTimeout, CommandTimeout time.Duration
	// MaxMessageBytes is the size limit for mailboxes without their own
	// max_message_bytes: a larger message is stored as its header only.
	MaxMessageBytes int64
	// Limits bound the parsing of each message against hostile mail: a
	// message past one is stored whole with a parse_error naming it.
	Limits ticket.Limits
	// CAFile names PEM certificates to trust for mail servers, in addition
	// to the system's (private servers with an in-house CA).
	CAFile string
	// ProtocolTrace writes every mail server conversation to the log
	// output, with credentials redacted: for the engineer on call.
	ProtocolTrace bool
	// AckLimit and AckWindow bound the acknowledgements sent to one
	// requester: at most AckLimit per AckWindow (0: no limit).
	AckLimit  int
	AckWindow time.Duration
	// Listen is the host:port of /metrics, /healthz and /readyz for the
	// long-running run; "" serves none.
	Listen string
	// ReadyMaxAge is how long an enabled mailbox may go without a
	// successful pass before /readyz fails; 0 means 3 × Interval.
	ReadyMaxAge time.Duration
	// Secrets say where the key encrypting stored secrets comes from
	// (environment only; see SecretSettings).
	Secrets SecretSettings
}

// DefaultConfig returns the settings used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Interval:        10 * time.Minute,
		MailboxTimeout:  10 * time.Minute,
		MaxMessageBytes: fetch.DefaultMaxMessageBytes,
		Limits:          ticket.DefaultLimits(),
		Concurrency:     fetch.DefaultConcurrency,
		AckLimit:        fetch.DefaultAckLimit,
		AckWindow:       fetch.DefaultAckWindow,
		DialTimeout:     mailbox.DefaultDialTimeout,
		CommandTimeout:  mailbox.DefaultCommandTimeout,
		AutoMigrate:     true,
		LogFormat:       "auto",
		LogLevel:        "info",
		Progress:        progressAuto,
	}
}

// fromEnv applies environment variables on top of c.
func (c *Config) fromEnv(getenv func(string) string) error {
	var errs []error
	setString(&c.DatabaseURL, getenv("DATABASE_URL"))
	setString(&c.DatabaseURL, getenv("FETCHER_DATABASE_URL"))
	errs = append(errs, setDuration(&c.Interval, "FETCHER_INTERVAL", getenv))
	errs = append(errs, setDuration(&c.MailboxTimeout, "FETCHER_MAILBOX_TIMEOUT", getenv))
	errs = append(errs, setBool(&c.AutoMigrate, "FETCHER_AUTO_MIGRATE", getenv))
	errs = append(errs, setBytes(&c.MaxMessageBytes, "FETCHER_MAX_MESSAGE_BYTES", getenv))
	errs = append(errs, c.limitsFromEnv(getenv)...)
	errs = append(errs, setInt(&c.Concurrency, "FETCHER_CONCURRENCY", getenv))
	errs = append(errs, setDuration(&c.DialTimeout, "FETCHER_DIAL_TIMEOUT", getenv))
	errs = append(errs, setDuration(&c.CommandTimeout, "FETCHER_COMMAND_TIMEOUT", getenv))
	errs = append(errs, setInt(&c.AckLimit, "FETCHER_ACK_LIMIT", getenv))
	errs = append(errs, setDuration(&c.AckWindow, "FETCHER_ACK_WINDOW", getenv))
	setString(&c.LogFormat, getenv("FETCHER_LOG_FORMAT"))
	setString(&c.LogLevel, getenv("FETCHER_LOG_LEVEL"))
	setString(&c.Progress, getenv("FETCHER_PROGRESS"))
	setString(&c.CAFile, getenv("FETCHER_CA_FILE"))
	errs = append(errs, setBool(&c.ProtocolTrace, "FETCHER_PROTOCOL_TRACE", getenv))
	setString(&c.Listen, getenv("FETCHER_LISTEN"))
	errs = append(errs, setDuration(&c.ReadyMaxAge, "FETCHER_READY_MAX_AGE", getenv))
	errs = append(errs, c.Secrets.fromEnv(getenv))
	return errors.Join(errs...)
}

// registerFlags binds the flags shared by the commands that use the
// database to c.
func (c *Config) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database", c.DatabaseURL, "database URL: postgres://… or sqlite:PATH (env DATABASE_URL; default sqlite:fetcher.db)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text, json or auto (env FETCHER_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error (env FETCHER_LOG_LEVEL)")
}

func (c *Config) registerRunFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Interval, "interval", c.Interval, "time between passes (env FETCHER_INTERVAL)")
	fs.DurationVar(&c.MailboxTimeout, "mailbox-timeout", c.MailboxTimeout, "longest time one mailbox may take in a pass (env FETCHER_MAILBOX_TIMEOUT)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "longest wait to connect to a mail server, TLS handshake included (env FETCHER_DIAL_TIMEOUT)")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", c.CommandTimeout, "longest wait for a mail server's answer to a command, or for more of a message (env FETCHER_COMMAND_TIMEOUT)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "how many mailboxes to fetch at once (env FETCHER_CONCURRENCY)")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "size limit: a larger message is stored as its header only and left on the server (env FETCHER_MAX_MESSAGE_BYTES)")
	c.registerLimitFlags(fs)
	fs.BoolVar(&c.AutoMigrate, "migrate", c.AutoMigrate, "apply pending migrations at start (env FETCHER_AUTO_MIGRATE)")
	fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM file of extra CAs to trust for mail servers (env FETCHER_CA_FILE)")
	fs.StringVar(&c.Progress, "progress", c.Progress, "live progress per mailbox on stderr: auto (on a terminal with --log-format auto), always or never (env FETCHER_PROGRESS)")
	fs.BoolVar(&c.ProtocolTrace, "protocol-trace", c.ProtocolTrace, "write every IMAP/POP3/SMTP conversation to stderr, credentials redacted; messages included, so for debugging only (env FETCHER_PROTOCOL_TRACE)")
	fs.IntVar(&c.AckLimit, "ack-limit", c.AckLimit, "at most this many acknowledgements to one requester per --ack-window; 0 means no limit (env FETCHER_ACK_LIMIT)")
	fs.DurationVar(&c.AckWindow, "ack-window", c.AckWindow, "the window of --ack-limit (env FETCHER_ACK_WINDOW)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "host:port to serve /metrics, /healthz and /readyz on, such as :9090; empty serves none, and run --once never does (env FETCHER_LISTEN)")
	fs.DurationVar(&c.ReadyMaxAge, "ready-max-age", c.ReadyMaxAge, "/readyz fails while an enabled mailbox has had no successful pass for longer; 0 means 3 × --interval (env FETCHER_READY_MAX_AGE)")
}

// readyMaxAge is ReadyMaxAge with its default.
func (c *Config) readyMaxAge() time.Duration {
	if c.ReadyMaxAge == 0 {
		return 3 * c.Interval
	}
	return c.ReadyMaxAge
}

// validateListen checks the service settings.
func (c *Config) validateListen() error {
	if c.ReadyMaxAge != 0 && c.ReadyMaxAge < c.Interval {
		return fmt.Errorf("ready max age %s is shorter than the interval %s, which would report mailboxes overdue between their passes: use 0 (3 × the interval) or at least the interval (FETCHER_READY_MAX_AGE / --ready-max-age)", c.ReadyMaxAge, c.Interval)
	}
	if c.Listen == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("listen address %q: want host:port such as :9090 or 127.0.0.1:9090 (FETCHER_LISTEN / --listen)", c.Listen)
	}
	return nil
}

// Validate names the setting that is wrong.
func (c *Config) Validate() error {
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("interval %s is too short: use at least 1s (FETCHER_INTERVAL / --interval)", c.Interval)
	case c.MailboxTimeout < time.Second:
		return fmt.Errorf("mailbox timeout %s is too short (FETCHER_MAILBOX_TIMEOUT / --mailbox-timeout)", c.MailboxTimeout)
	case c.DialTimeout < 100*time.Millisecond || c.CommandTimeout < 100*time.Millisecond:
		return fmt.Errorf("dial timeout %s / command timeout %s: use at least 100ms (FETCHER_DIAL_TIMEOUT, FETCHER_COMMAND_TIMEOUT)", c.DialTimeout, c.CommandTimeout)
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("concurrency %d: use 1 to 256 (FETCHER_CONCURRENCY / --concurrency)", c.Concurrency)
	case c.MaxMessageBytes < fetch.MinMessageBytes:
		return fmt.Errorf("max message bytes %d is too small: use at least %d (FETCHER_MAX_MESSAGE_BYTES / --max-message-bytes)", c.MaxMessageBytes, fetch.MinMessageBytes)
	case c.AckLimit < 0 || c.AckLimit > 1000:
		return fmt.Errorf("ack limit %d: use 0 (no limit) to 1000 (FETCHER_ACK_LIMIT / --ack-limit)", c.AckLimit)
	case c.AckWindow < time.Minute || c.AckWindow > 30*24*time.Hour:
		return fmt.Errorf("ack window %s: use 1m to 720h (FETCHER_ACK_WINDOW / --ack-window)", c.AckWindow)
	case c.LogFormat != "auto" && c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log format %q: use text, json or auto (FETCHER_LOG_FORMAT / --log-format)", c.LogFormat)
	case c.Progress != progressAuto && c.Progress != progressAlways && c.Progress != progressNever:
		return fmt.Errorf("progress %q: use auto, always or never (FETCHER_PROGRESS / --progress)", c.Progress)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if err := c.validateListen(); err != nil {
		return err
	}
	return c.validateLimits()
}

// limitsFromEnv applies the FETCHER_MAX_* parse limits.
func (c *Config) limitsFromEnv(getenv func(string) string) []error {
	l := &c.Limits
	return []error{
		setBytes(&l.HeaderBytes, "FETCHER_MAX_HEADER_BYTES", getenv),
		setInt(&l.HeaderFields, "FETCHER_MAX_HEADER_FIELDS", getenv),
		setInt(&l.MIMEDepth, "FETCHER_MAX_MIME_DEPTH", getenv),
		setInt(&l.MIMEParts, "FETCHER_MAX_MIME_PARTS", getenv),
		setInt(&l.Attachments, "FETCHER_MAX_ATTACHMENTS", getenv),
		setBytes(&l.DecodedBytes, "FETCHER_MAX_DECODED_BYTES", getenv),
	}
}

func (c *Config) registerLimitFlags(fs *flag.FlagSet) {
	l := &c.Limits
	const after = "; a message past it is stored whole with a parse_error"
	fs.Int64Var(&l.HeaderBytes, "max-header-bytes", l.HeaderBytes, "largest header to parse, in bytes"+after+" (env FETCHER_MAX_HEADER_BYTES)")
	fs.IntVar(&l.HeaderFields, "max-header-fields", l.HeaderFields, "most header fields to parse"+after+" (env FETCHER_MAX_HEADER_FIELDS)")
	fs.IntVar(&l.MIMEDepth, "max-mime-depth", l.MIMEDepth, "deepest MIME nesting to parse"+after+" (env FETCHER_MAX_MIME_DEPTH)")
	fs.IntVar(&l.MIMEParts, "max-mime-parts", l.MIMEParts, "most MIME parts to parse"+after+" (env FETCHER_MAX_MIME_PARTS)")
	fs.IntVar(&l.Attachments, "max-attachments", l.Attachments, "most attachments to keep"+after+" (env FETCHER_MAX_ATTACHMENTS)")
	fs.Int64Var(&l.DecodedBytes, "max-decoded-bytes", l.DecodedBytes, "most bytes a message may decode to, winmail.dat contents included"+after+" (env FETCHER_MAX_DECODED_BYTES)")
}

// validateLimits names the first parse limit out of range: below the
// minimum ordinary mail needs, or (MIME depth and parts) above what keeps
// parsing time bounded, which is what those limits are for.
func (c *Config) validateLimits() error {
	least, l := ticket.MinLimits(), c.Limits
	for _, s := range []struct {
		name, env, flag  string
		got, least, most int64
	}{
		{"max header bytes", "FETCHER_MAX_HEADER_BYTES", "--max-header-bytes", l.HeaderBytes, least.HeaderBytes, math.MaxInt64},
		{"max header fields", "FETCHER_MAX_HEADER_FIELDS", "--max-header-fields", int64(l.HeaderFields), int64(least.HeaderFields), math.MaxInt32},
		{"max MIME depth", "FETCHER_MAX_MIME_DEPTH", "--max-mime-depth", int64(l.MIMEDepth), int64(least.MIMEDepth), ticket.MostMIMEDepth},
		{"max MIME parts", "FETCHER_MAX_MIME_PARTS", "--max-mime-parts", int64(l.MIMEParts), int64(least.MIMEParts), ticket.MostMIMEParts},
		{"max attachments", "FETCHER_MAX_ATTACHMENTS", "--max-attachments", int64(l.Attachments), int64(least.Attachments), math.MaxInt32},
		{"max decoded bytes", "FETCHER_MAX_DECODED_BYTES", "--max-decoded-bytes", l.DecodedBytes, least.DecodedBytes, math.MaxInt64},
	} {
		switch {
		case s.got < s.least:
			return fmt.Errorf("%s %d is too small for ordinary mail: use at least %d (%s / %s)", s.name, s.got, s.least, s.env, s.flag)
		case s.got > s.most:
			return fmt.Errorf("%s %d is too large to keep parsing time bounded: use at most %d (%s / %s)", s.name, s.got, s.most, s.env, s.flag)
		}
	}
	return nil
}

// rootCAs returns the system pool plus CAFile, or nil for the system's.
func (c *Config) rootCAs() (*x509.CertPool, error) {
	if c.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file (FETCHER_CA_FILE / --ca-file): %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CAFile)
	}
	return pool, nil
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func setDuration(dst *time.Duration, name string, getenv func(string) string) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s=%q: want a duration like 10m or 90s", name, v)
	}
	*dst = d
	return nil
}

func setBytes(dst *int64, name string, getenv func(string) string) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%s=%q: want a number of bytes like 52428800", name, v)
	}
	*dst = n
	return nil
}

func setInt(dst *int, name string, getenv func(string) string) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s=%q: want a whole number", name, v)
	}
	*dst = n
	return nil
}

func setBool(dst *bool, name string, getenv func(string) string) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%s=%q: want true or false", name, v)
	}
	*dst = b
	return nil
}
