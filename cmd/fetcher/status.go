package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
)

// testNowEnv fixes the clock of status and mailbox show, for the tests
// that run the real binary and compare its output with golden files: an
// RFC 3339 time. For tests only; not a setting.
const testNowEnv = "FETCHER_TEST_NOW"

// now is the clock of the commands that print times.
func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	if v := m.Getenv(testNowEnv); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
	}
	return time.Now()
}

const statusUsage = `Usage: fetcher status [flags]

Prints one row per mailbox, disabled ones too: its status (active,
failing, needs_reauth), last success, last error (one line; the whole text
with --wide or in fetcher mailbox show), when its access token and its
client secret or certificate expire, when it is tried next, and its sending
(off, ok, or the last SMTP error) with the notifications waiting in the
outbox. A summary follows, naming the enabled mailboxes without a success
for longer than --ready-max-age. --format json prints the same as an array
of objects for scripts (timestamps in RFC 3339, UTC).

Exit status: 0, or 1 when any enabled mailbox is failing or needs
re-authorization, so cron or a monitoring check can run it as is; 2 for a
mistake in the flags or settings; 3 when the database could not be read
(missing, unreachable, or its schema behind). It reads the database and
changes nothing (not the schema either: run fetcher migrate first).

Flags:
`

// statusOptions are the flags of `fetcher status`.
type statusOptions struct {
	format       string
	wide         bool
	overdueAfter time.Duration
}

func (o *statusOptions) register(m *Main) func(*flag.FlagSet, *Config) {
	return func(fs *flag.FlagSet, c *Config) {
		quietLogs(m, fs, c)
		fs.StringVar(&o.format, "format", "table", "output format: table or json")
		fs.BoolVar(&o.wide, "wide", false, "print each last error whole, on one line, instead of cutting it short")
		fs.DurationVar(&c.Interval, "interval", c.Interval, "the workers' interval; --ready-max-age defaults to three of them (env FETCHER_INTERVAL)")
		// The threshold of /readyz (run --listen), so that both call the
		// same mailboxes overdue; Config.Validate checks it.
		fs.DurationVar(&c.ReadyMaxAge, "ready-max-age", c.ReadyMaxAge, "an enabled mailbox without a successful pass for longer is overdue, as for /readyz; 0 means 3 × --interval (env FETCHER_READY_MAX_AGE)")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), statusUsage)
			fs.PrintDefaults()
		}
	}
}

// quietLogs makes warn the default log level of the operator's commands,
// whose output is their answer: the info lines of opening the database
// would only clutter it. FETCHER_LOG_LEVEL and --log-level still apply.
func quietLogs(m *Main, fs *flag.FlagSet, c *Config) {
	if m.Getenv("FETCHER_LOG_LEVEL") == "" {
		c.LogLevel = "warn"
		if f := fs.Lookup("log-level"); f != nil {
			f.DefValue = "warn"
		}
	}
}

// errNotHealthy is status's exit status 1: what is wrong is in the output.
type errNotHealthy struct{ failing, reauth int }

func (e *errNotHealthy) Error() string {
	return fmt.Sprintf("%d enabled mailboxes failing, %d needing re-authorization", e.failing, e.reauth)
}

func (m *Main) statusCmd(ctx context.Context, args []string) error {
	var o statusOptions
	cfg, err := m.config("status", args, o.register(m))
	switch {
	case err != nil:
		return err
	case o.format != "table" && o.format != "json":
		return &usageError{fmt.Errorf("--format %q: use table or json", o.format)}
	}
	o.overdueAfter = cfg.readyMaxAge()
	db, err := m.openReadOnly(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	rows, err := loadStatus(ctx, db, m.now(), o.overdueAfter)
	if err != nil {
		return &checkError{err}
	}
	if o.format == "json" {
		if err := writeStatusJSON(m.Stdout, rows); err != nil {
			return err
		}
	} else {
		writeStatusTable(m.Stdout, rows, m.now(), o)
	}
	var bad errNotHealthy
	for _, r := range rows {
		switch {
		case !r.mb.Enabled:
		case r.mb.Status == store.StatusFailing:
			bad.failing++
		case r.mb.Status == store.StatusNeedsReauth:
			bad.reauth++
		}
	}
	if bad.failing+bad.reauth > 0 {
		return &bad
	}
	return nil
}

// openReadOnly opens the database for the operator's commands: with the
// secret key (to test a mailbox), but never migrating: a command that
// looks at the mailboxes must not change the schema under running workers.
func (m *Main) openReadOnly(ctx context.Context, cfg Config) (*store.DB, error) {
	cfg.AutoMigrate = false
	// Opening an embedded database that is not there would create an
	// empty one, and the command would look at the wrong database.
	if path, ok := store.SQLitePath(cfg.DatabaseURL); ok {
		if _, err := os.Stat(path); err != nil {
			return nil, &checkError{fmt.Errorf("no database at %s: set DATABASE_URL (or --database) to the fetcher's database (docs/configuration.md)", path)}
		}
	}
	db, err := openDatabase(ctx, cfg, m.logger(cfg))
	if err != nil {
		return nil, &checkError{err}
	}
	return db, nil
}

// checkError is an operator's command that could not look: the database
// is missing or unreachable. Its exit status (3) tells monitoring apart
// "the mailboxes are not well" (1) from "could not check".
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// statusRow is one mailbox as status shows it.
type statusRow struct {
	mb      store.Mailbox
	secrets store.SecretsSet
	pending int64
	overdue bool
}

// credential names the mailbox's client credential and when it expires
// (zero: not recorded).
func (r statusRow) credential() (string, time.Time) {
	cfg := fetch.OAuthConfig(r.mb)
	switch {
	case r.mb.AuthType != "oauth2":
		return "", time.Time{}
	case cfg.UsesCertificate():
		exp, _ := cfg.CredentialExpiry()
		return "certificate", exp
	case r.secrets["client_secret"]:
		return "client_secret", r.mb.ClientSecretExpiresAt
	}
	return "", time.Time{}
}

func loadStatus(ctx context.Context, db *store.DB, now time.Time, overdueAfter time.Duration) ([]statusRow, error) {
	boxes, err := db.Mailboxes().List(ctx)
	if err != nil {
		return nil, err
	}
	secrets, err := db.Mailboxes().SecretsSet(ctx)
	if err != nil {
		return nil, err
	}
	pending, err := db.Outbox().PendingByMailbox(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]statusRow, len(boxes))
	for i, mb := range boxes {
		rows[i] = statusRow{mb: mb, secrets: secrets[mb.ID], pending: pending[mb.ID], overdue: overdue(mb, now, overdueAfter)}
	}
	return rows, nil
}

// overdue reports an enabled mailbox without a success for longer than
// after (counted from its creation when it never had one).
func overdue(mb store.Mailbox, now time.Time, after time.Duration) bool {
	since := mb.LastSuccessAt
	if since.IsZero() {
		since = mb.CreatedAt
	}
	return mb.Enabled && !since.IsZero() && now.Sub(since) > after
}

// Column widths of the table: the last error is cut to fit a wide
// terminal with the other columns (whole with --wide), and the SMTP error
// in the sending column shorter still (whole in mailbox show and JSON).
const (
	lastErrorWidth = 60
	sendingWidth   = 32
)

func writeStatusTable(w io.Writer, rows []statusRow, now time.Time, o statusOptions) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROTO\tENABLED\tSTATUS\tLAST SUCCESS\tNEXT ATTEMPT\tTOKEN EXPIRES\tSECRET EXPIRES\tSENDING\tOUTBOX\tLAST ERROR")
	for _, r := range rows {
		mb := r.mb
		lastErr := oneLine(mb.LastError)
		if !o.wide {
			lastErr = cut(lastErr, lastErrorWidth)
		}
		token := "-"
		if mb.AuthType == "oauth2" {
			token = when(mb.AccessTokenExpiresAt, now)
		}
		kind, exp := r.credential()
		secret := when(exp, now)
		switch {
		case kind == "certificate" && exp.IsZero():
			secret = "cert unreadable"
		case kind == "certificate":
			secret = "cert " + secret
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
			mb.ID, oneLine(mb.Name), mb.Protocol, yesNo(mb.Enabled), dash(mb.Status), when(mb.LastSuccessAt, now),
			nextAttempt(mb, now), token, secret, sending(mb), r.pending, dash(lastErr))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, summary(rows, o.overdueAfter, now))
}

// summary is the footer: the counts, then the overdue mailboxes.
func summary(rows []statusRow, overdueAfter time.Duration, now time.Time) string {
	var enabled, active, failing, reauth int
	var late []string
	for _, r := range rows {
		if !r.mb.Enabled {
			continue
		}
		enabled++
		switch r.mb.Status {
		case store.StatusActive:
			active++
		case store.StatusFailing:
			failing++
		case store.StatusNeedsReauth:
			reauth++
		}
		if r.overdue {
			last := "never"
			if !r.mb.LastSuccessAt.IsZero() {
				last = relative(r.mb.LastSuccessAt, now)
			}
			late = append(late, fmt.Sprintf("%s (last success %s)", r.mb.Name, last))
		}
	}
	need := "need"
	if reauth == 1 {
		need = "needs"
	}
	s := fmt.Sprintf("%s: %d active, %d failing, %d %s re-authorization", plural(len(rows), "mailbox", "mailboxes"), active, failing, reauth, need)
	if disabled := len(rows) - enabled; disabled > 0 {
		s += fmt.Sprintf("; %d disabled", disabled)
	}
	s += ".\nMailboxes overdue (no success for over " + shortDuration(overdueAfter) + "): "
	if len(late) == 0 {
		return s + "none."
	}
	return s + strings.Join(late, ", ") + "."
}

// nextAttempt says when a worker tries the mailbox next.
func nextAttempt(mb store.Mailbox, now time.Time) string {
	switch {
	case !mb.Enabled:
		return "-"
	case mb.ReauthFingerprint != "":
		return "when its settings change"
	case !mb.NextAttemptAt.IsZero() && mb.NextAttemptAt.After(now):
		return when(mb.NextAttemptAt, now)
	}
	return "next pass"
}

// sending is the sending column: off, ok, or the last SMTP error cut
// short (whole in mailbox show and in JSON).
func sending(mb store.Mailbox) string {
	switch {
	case !mb.SMTPEnabled:
		return "off"
	case mb.SMTPLastError == "":
		return "ok"
	}
	return cut("failing: "+oneLine(mb.SMTPLastError), sendingWidth)
}

// statusJSON is one mailbox in `fetcher status --format json`. The field
// names are a contract with scripts: add fields, never rename one.
type statusJSON struct {
	ID                   int64       `json:"id"`
	Name                 string      `json:"name"`
	Protocol             string      `json:"protocol"`
	Enabled              bool        `json:"enabled"`
	Status               string      `json:"status"`
	LastSuccessAt        jsonTime    `json:"last_success_at"`
	LastError            *string     `json:"last_error"`
	LastErrorAt          jsonTime    `json:"last_error_at"`
	ConsecutiveFailures  int         `json:"consecutive_failures"`
	NextAttemptAt        jsonTime    `json:"next_attempt_at"`
	WaitsForNewSettings  bool        `json:"waits_for_new_settings"`
	Overdue              bool        `json:"overdue"`
	AccessTokenExpiresAt jsonTime    `json:"access_token_expires_at"`
	Credential           *string     `json:"credential"`
	CredentialExpiresAt  jsonTime    `json:"credential_expires_at"`
	Warning              *string     `json:"warning"`
	Sending              sendingJSON `json:"sending"`
}

type sendingJSON struct {
	Enabled       bool     `json:"enabled"`
	State         string   `json:"state"` // off, ok or failing
	LastError     *string  `json:"last_error"`
	LastErrorAt   jsonTime `json:"last_error_at"`
	LastSuccessAt jsonTime `json:"last_success_at"`
	OutboxPending int64    `json:"outbox_pending"`
}

func writeStatusJSON(w io.Writer, rows []statusRow) error {
	out := make([]statusJSON, len(rows))
	for i, r := range rows {
		mb := r.mb
		kind, exp := r.credential()
		state := "off"
		switch {
		case mb.SMTPEnabled && mb.SMTPLastError == "":
			state = "ok"
		case mb.SMTPEnabled:
			state = "failing"
		}
		out[i] = statusJSON{
			ID: mb.ID, Name: mb.Name, Protocol: mb.Protocol, Enabled: mb.Enabled, Status: mb.Status,
			LastSuccessAt: jsonTime(mb.LastSuccessAt), LastError: nullable(mb.LastError), LastErrorAt: jsonTime(mb.LastErrorAt),
			ConsecutiveFailures: mb.ConsecutiveFailures, NextAttemptAt: jsonTime(mb.NextAttemptAt),
			WaitsForNewSettings: mb.ReauthFingerprint != "", Overdue: r.overdue,
			AccessTokenExpiresAt: jsonTime(mb.AccessTokenExpiresAt), Credential: nullable(kind), CredentialExpiresAt: jsonTime(exp),
			Warning: nullable(mb.Warning),
			Sending: sendingJSON{
				Enabled: mb.SMTPEnabled, State: state, LastError: nullable(mb.SMTPLastError),
				LastErrorAt: jsonTime(mb.SMTPLastErrorAt), LastSuccessAt: jsonTime(mb.SMTPLastSuccessAt), OutboxPending: r.pending,
			},
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// jsonTime is a timestamp in RFC 3339, UTC, or null.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Time and text formatting of the operator's commands.

// stamp is an absolute time, UTC, to the minute: "2026-11-22 09:30Z".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

// when is stamp and relative together, or "-" for no time.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return stamp(t) + " (" + relative(t, now) + ")"
}

// relative says how far t is from now: "3h ago", "in 52m".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return shortDuration(-d) + " ago"
	}
	return "in " + shortDuration(d)
}

// shortDuration rounds down to the largest unit that fits: 45s, 52m, 3h,
// 10d (hours up to two days).
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// oneLine joins a multi-line text into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cut shortens s to at most n characters, ending in "…" when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
