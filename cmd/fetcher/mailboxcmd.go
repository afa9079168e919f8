package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/store"
)

const mailboxUsage = `Usage:
  fetcher mailbox add [flags] NAME  add a mailbox: a flag per column (--host, --username,
                                    --oauth-provider …), secrets from a file or the
                                    environment (--client-secret-file, --client-secret-env)
  fetcher mailbox set [flags] NAME|ID
                                    change the columns the flags name, nothing else
  fetcher mailbox list [--format table|json]  the mailboxes: id, name, protocol, server,
                                    username, sign-in, provider, enabled, status
  fetcher mailbox show NAME|ID      every setting and state of one mailbox (secrets only as
                                    set or not set), its ticket types and its outbox
  fetcher mailbox enable NAME|ID    let the workers fetch it (and send its outbox) again
  fetcher mailbox disable NAME|ID   stop fetching and sending it; nothing is deleted
  fetcher mailbox test [--refresh] NAME|ID
                                    check it as a pass would, fetching nothing: validate the
                                    row, get a token, log in, count the messages in the
                                    folder and, when it sends, log in to its SMTP server;
                                    exit status 1 when a step fails

NAME|ID is mailboxes.name, or the mailbox's id. add and set check the row as
a pass would before writing it, and migrate the schema like fetcher run;
the other commands never change the schema: run fetcher migrate first. Settings (DATABASE_URL, the secret key
…) are those of fetcher run (docs/configuration.md).
Run "fetcher mailbox COMMAND --help" for a command's flags.
`

func (m *Main) mailboxCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, mailboxUsage)
		return &usageError{errors.New("mailbox needs a command: add, set, list, show, enable, disable or test")}
	}
	switch args[0] {
	case "add":
		return m.mailboxAdd(ctx, args[1:])
	case "set":
		return m.mailboxSet(ctx, args[1:])
	case "list":
		return m.mailboxList(ctx, args[1:])
	case "show":
		return m.mailboxShow(ctx, args[1:])
	case "enable":
		return m.mailboxEnable(ctx, args[1:], true)
	case "disable":
		return m.mailboxEnable(ctx, args[1:], false)
	case "test":
		return m.mailboxTest(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, mailboxUsage)
		return nil
	}
	fmt.Fprint(m.Stderr, mailboxUsage)
	return &usageError{fmt.Errorf("unknown mailbox command %q", args[0])}
}

// mailboxFlags registers a mailbox command's flags with its usage text.
func (m *Main) mailboxFlags(usage string, more func(*flag.FlagSet, *Config)) func(*flag.FlagSet, *Config) {
	return func(fs *flag.FlagSet, c *Config) {
		quietLogs(m, fs, c)
		if more != nil {
			more(fs, c)
		}
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), usage)
			fs.PrintDefaults()
		}
	}
}

// oneMailbox parses the flags of a command taking NAME|ID, flags before or
// after it.
func (m *Main) oneMailbox(name string, args []string, register func(*flag.FlagSet, *Config)) (Config, string, error) {
	flagArgs, operands := splitOperands(args, register)
	cfg, err := m.config(name, flagArgs, register)
	switch {
	case err != nil:
		return cfg, "", err
	case len(operands) != 1:
		return cfg, "", &usageError{fmt.Errorf("%s takes one mailbox, its name or id, got %d: fetcher %s [flags] NAME|ID", name, len(operands), name)}
	}
	return cfg, operands[0], nil
}

// openMailbox opens the database without changing its schema and finds the
// mailbox ref names (see lookupMailbox); the caller closes the database.
func (m *Main) openMailbox(ctx context.Context, cfg Config, ref string) (*store.DB, store.Mailbox, error) {
	db, err := m.openReadOnly(ctx, cfg)
	if err != nil {
		return nil, store.Mailbox{}, err
	}
	mb, err := lookupMailbox(ctx, db, ref)
	if err != nil {
		_ = db.Close()
		return nil, store.Mailbox{}, err
	}
	return db, mb, nil
}

// lookupMailbox finds a mailbox by name, or by id when no name matches, in
// the listing (without secrets); it names the mailboxes there are when
// none does.
func lookupMailbox(ctx context.Context, db *store.DB, ref string) (store.Mailbox, error) {
	all, err := db.Mailboxes().List(ctx)
	if err != nil {
		return store.Mailbox{}, err
	}
	for _, mb := range all {
		if mb.Name == ref {
			return mb, nil
		}
	}
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		for _, mb := range all {
			if mb.ID == id {
				return mb, nil
			}
		}
	}
	if len(all) == 0 {
		return store.Mailbox{}, fmt.Errorf("no mailbox is named %q: the mailboxes table is empty; add the row first (docs/microsoft365.md)", ref)
	}
	names := make([]string, len(all))
	for i, mb := range all {
		names[i] = fmt.Sprintf("%d %q", mb.ID, mb.Name)
	}
	return store.Mailbox{}, fmt.Errorf("no mailbox has the name or id %q; there are: %s", ref, strings.Join(names, ", "))
}

const mailboxListUsage = `Usage: fetcher mailbox list [flags]

Lists every mailbox, disabled ones too: id, name, protocol, server,
username, sign-in (auth_type, and the grant for OAuth), provider, enabled,
status. fetcher status shows their health.

Flags:
`

func (m *Main) mailboxList(ctx context.Context, args []string) error {
	var format string
	cfg, err := m.config("mailbox list", args, m.mailboxFlags(mailboxListUsage, func(fs *flag.FlagSet, _ *Config) {
		fs.StringVar(&format, "format", "table", "output format: table or json")
	}))
	switch {
	case err != nil:
		return err
	case format != "table" && format != "json":
		return &usageError{fmt.Errorf("--format %q: use table or json", format)}
	}
	db, err := m.openReadOnly(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	all, err := db.Mailboxes().List(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
		return writeListJSON(m.Stdout, all)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROTO\tSERVER\tUSERNAME\tAUTH\tPROVIDER\tENABLED\tSTATUS")
	for _, mb := range all {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mb.ID, oneLine(mb.Name), mb.Protocol,
			server(mb), dash(mb.Username), auth(mb), dash(mb.OAuthProvider), yesNo(mb.Enabled), dash(mb.Status))
	}
	_ = tw.Flush()
	if len(all) == 0 {
		fmt.Fprintln(m.Stdout, "no mailboxes yet: add a row to the mailboxes table (docs/microsoft365.md)")
	}
	return nil
}

// listJSON is one mailbox of `fetcher mailbox list --format json`; the
// field names are a contract with scripts.
type listJSON struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Protocol  string  `json:"protocol"`
	Host      string  `json:"host"`
	Port      int     `json:"port"`
	Username  string  `json:"username"`
	AuthType  string  `json:"auth_type"`
	Grant     *string `json:"oauth_grant"`
	Provider  *string `json:"oauth_provider"`
	Enabled   bool    `json:"enabled"`
	Status    string  `json:"status"`
	Sending   bool    `json:"smtp_enabled"`
	CreatedAt string  `json:"created_at"`
}

func writeListJSON(w io.Writer, all []store.Mailbox) error {
	out := make([]listJSON, len(all))
	for i, mb := range all {
		var grant *string
		if mb.AuthType == "oauth2" {
			grant = nullable(mb.OAuthGrant)
		}
		out[i] = listJSON{
			ID: mb.ID, Name: mb.Name, Protocol: mb.Protocol, Host: mb.Host, Port: mb.Port, Username: mb.Username,
			AuthType: mb.AuthType, Grant: grant, Provider: nullable(mb.OAuthProvider), Enabled: mb.Enabled,
			Status: mb.Status, Sending: mb.SMTPEnabled, CreatedAt: mb.CreatedAt.UTC().Format(time.RFC3339),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func server(mb store.Mailbox) string {
	return fmt.Sprintf("%s:%d", mb.Host, mb.Port)
}

// auth is the sign-in: password, oauth2, or oauth2 app-only.
func auth(mb store.Mailbox) string {
	if mb.AuthType == "oauth2" && mb.OAuthGrant == "client_credentials" {
		return "oauth2 app-only"
	}
	return dash(mb.AuthType)
}

const mailboxEnableUsage = `Usage: fetcher mailbox enable|disable [flags] NAME|ID

Sets mailboxes.enabled. A disabled mailbox is neither fetched nor sends its
outbox (its notifications wait); its rows, tokens and status stay as they
are. Workers notice at their next pass.

Flags:
`

func (m *Main) mailboxEnable(ctx context.Context, args []string, enable bool) error {
	name := "mailbox disable"
	if enable {
		name = "mailbox enable"
	}
	cfg, ref, err := m.oneMailbox(name, args, m.mailboxFlags(mailboxEnableUsage, nil))
	if err != nil {
		return err
	}
	db, mb, err := m.openMailbox(ctx, cfg, ref)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	changed, err := db.Mailboxes().SetEnabled(ctx, mb.ID, enable)
	if err != nil {
		return err
	}
	state := "disabled"
	if enable {
		state = "enabled"
	}
	switch {
	case !changed:
		fmt.Fprintf(m.Stdout, "Mailbox %d %q was already %s.\n", mb.ID, mb.Name, state)
	case enable:
		fmt.Fprintf(m.Stdout, "Mailbox %d %q enabled: the workers fetch it from their next pass (status now: %s).\n", mb.ID, mb.Name, mb.Status)
	default:
		fmt.Fprintf(m.Stdout, "Mailbox %d %q disabled: the workers stop fetching it and sending its notifications from their next pass; nothing was deleted.\n", mb.ID, mb.Name)
	}
	return nil
}

const mailboxShowUsage = `Usage: fetcher mailbox show [flags] NAME|ID

Prints every column of the mailbox's row except the secrets, which are shown
only as set or not set; the whole last_error, warning and smtp_last_error;
the ticket types its mail feeds; and its notifications by outbox status.

Flags:
`

func (m *Main) mailboxShow(ctx context.Context, args []string) error {
	cfg, ref, err := m.oneMailbox("mailbox show", args, m.mailboxFlags(mailboxShowUsage, nil))
	if err != nil {
		return err
	}
	db, mb, err := m.openMailbox(ctx, cfg, ref) // without its secrets
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	secrets, err := db.Mailboxes().SecretsSet(ctx)
	if err != nil {
		return err
	}
	tts, err := db.Mailboxes().TicketTypes(ctx, mb.ID)
	if err != nil {
		return err
	}
	outbox, err := db.Outbox().CountsByStatus(ctx, mb.ID)
	if err != nil {
		return err
	}
	writeShow(m.Stdout, mb, secrets[mb.ID], tts, outbox, m.now())
	return nil
}

// field is one line of mailbox show.
type field struct{ name, value string }

func writeShow(w io.Writer, mb store.Mailbox, secrets store.SecretsSet, tts []store.TicketType, outbox map[string]int64, now time.Time) {
	set := func(col string) string {
		if secrets[col] {
			return "set"
		}
		return "not set"
	}
	cert := "not set"
	if strings.TrimSpace(mb.ClientCertificate) != "" {
		cert = "set"
		if exp, ok := fetch.OAuthConfig(mb).CredentialExpiry(); ok {
			cert = "set, expires " + when(exp, now)
		}
	}
	caCert := "not set"
	if strings.TrimSpace(mb.TLSCACert) != "" {
		caCert = fmt.Sprintf("set (%d certificates)", strings.Count(mb.TLSCACert, "-----BEGIN CERTIFICATE-----"))
	}
	fmt.Fprintf(w, "Mailbox %d %q\n", mb.ID, mb.Name)
	sections := []struct {
		title  string
		fields []field
	}{
		{"Server", []field{
			{"protocol", mb.Protocol}, {"host", mb.Host}, {"port", strconv.Itoa(mb.Port)},
			{"use_ssl", strconv.FormatBool(mb.UseSSL)}, {"starttls", strconv.FormatBool(mb.StartTLS)},
			{"tls_ca_cert", caCert}, {"tls_skip_verify", strconv.FormatBool(mb.TLSSkipVerify)},
			{"allow_plaintext", strconv.FormatBool(mb.AllowPlaintext)},
			{"folder", mb.Folder}, {"after_fetch", mb.AfterFetch}, {"move_to_folder", mb.MoveToFolder},
			{"max_message_bytes", maxBytes(mb.MaxMessageBytes)},
			{"auto_reply_tickets", strconv.FormatBool(mb.AutoReplyTickets)},
		}},
		{"Sign-in", []field{
			{"username", mb.Username}, {"auth_type", mb.AuthType}, {"password", set("password")},
			{"oauth_provider", mb.OAuthProvider}, {"oauth_grant", mb.OAuthGrant},
			{"tenant_id", mb.TenantID}, {"client_id", mb.ClientID},
			{"client_secret", set("client_secret")}, {"client_secret_expires_at", when(mb.ClientSecretExpiresAt, now)},
			{"client_certificate", cert}, {"client_private_key", set("client_private_key")},
			{"redirect_url", mb.RedirectURL}, {"scopes", mb.Scopes}, {"authority_url", mb.AuthorityURL},
			{"auth_url", mb.AuthURL}, {"token_url", mb.TokenURL},
			{"refresh_token", set("refresh_token")}, {"access_token", set("access_token")},
			{"access_token_expires_at", when(mb.AccessTokenExpiresAt, now)},
			{"refresh_before_seconds", strconv.Itoa(mb.RefreshBeforeSeconds)},
		}},
		{"Sending", []field{
			{"smtp_enabled", strconv.FormatBool(mb.SMTPEnabled)}, {"smtp_host", mb.SMTPHost},
			{"smtp_port", zeroDash(mb.SMTPPort)}, {"smtp_security", mb.SMTPSecurity},
			{"smtp_username", mb.SMTPUsername}, {"smtp_from", mb.SMTPFrom}, {"smtp_from_name", mb.SMTPFromName},
			{"smtp_scopes", mb.SMTPScopes}, {"smtp_access_token", set("smtp_access_token")},
			{"smtp_access_token_expires_at", when(mb.SMTPAccessTokenExpiresAt, now)},
			{"smtp_last_success_at", when(mb.SMTPLastSuccessAt, now)},
			{"smtp_last_error_at", when(mb.SMTPLastErrorAt, now)}, {"smtp_last_error", mb.SMTPLastError},
		}},
		{"State", []field{
			{"enabled", strconv.FormatBool(mb.Enabled)}, {"status", mb.Status},
			{"last_success_at", when(mb.LastSuccessAt, now)}, {"last_error_at", when(mb.LastErrorAt, now)},
			{"last_error", mb.LastError}, {"consecutive_failures", strconv.Itoa(mb.ConsecutiveFailures)},
			{"next_attempt_at", when(mb.NextAttemptAt, now)},
			{"waits_for_new_settings", strconv.FormatBool(mb.ReauthFingerprint != "")},
			{"warning", mb.Warning}, {"lease_owner", mb.LeaseOwner},
			{"lease_expires_at", when(mb.LeaseExpiresAt, now)},
			{"created_at", when(mb.CreatedAt, now)}, {"updated_at", when(mb.UpdatedAt, now)},
		}},
	}
	for _, s := range sections {
		fmt.Fprintf(w, "\n%s\n", s.title)
		for _, f := range s.fields {
			writeField(w, f)
		}
	}
	fmt.Fprintf(w, "\nTicket types fed by this mailbox\n")
	if len(tts) == 0 {
		fmt.Fprintln(w, "  none: its mail becomes tickets without a type")
	}
	for i, tt := range tts {
		use := " (used)"
		if i > 0 {
			use = " (not used: the first type by id is)"
		}
		fmt.Fprintf(w, "  %d %q%s: admin_email %s, notify_new %t, notify_replies %t, acknowledge %t\n",
			tt.ID, tt.Name, use, dash(tt.AdminEmail), tt.NotifyNew, tt.NotifyReplies, tt.Acknowledge)
	}
	fmt.Fprintf(w, "\nOutbox\n")
	fmt.Fprintf(w, "  %s %d, %s %d, %s %d, %s %d\n", store.OutboxPending, outbox[store.OutboxPending],
		store.OutboxSent, outbox[store.OutboxSent], store.OutboxFailed, outbox[store.OutboxFailed],
		store.OutboxSuppressed, outbox[store.OutboxSuppressed])
}

// writeField writes "  name  value", a value of several lines indented
// under its first.
func writeField(w io.Writer, f field) {
	const indent = "  %-30s"
	lines := strings.Split(strings.TrimRight(f.value, "\n"), "\n")
	fmt.Fprintf(w, indent+"%s\n", f.name, dash(lines[0]))
	for _, l := range lines[1:] {
		fmt.Fprintf(w, indent+"%s\n", "", l)
	}
}

func maxBytes(n int64) string {
	if n <= 0 {
		return "- (FETCHER_MAX_MESSAGE_BYTES)"
	}
	return strconv.FormatInt(n, 10)
}

func zeroDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

const mailboxTestUsage = `Usage: fetcher mailbox test [flags] NAME|ID

Checks the mailbox as a pass would, fetching nothing: validates the row,
gets an access token the way a pass does (a refresh stores the rotated
refresh token, as it must), logs in, lists the folder (IMAP) or the
maildrop (POP3) and counts the messages, and, when smtp_enabled is set, logs
in to the SMTP server and leaves without sending. Each step prints its
duration and, when it fails, the error in the words a pass stores in
last_error. Nothing changes on the servers; the mailbox's status,
last_error and warning stay as they are, and no fetch_runs row is written.
It works on disabled mailboxes too.

Exit status: 0 when every step passed, 1 when one failed.

Flags:
`

// errProbeFailed is mailbox test's exit status 1; the steps are printed.
var errProbeFailed = errors.New("mailbox test failed")

func (m *Main) mailboxTest(ctx context.Context, args []string) error {
	var refresh bool
	cfg, ref, err := m.oneMailbox("mailbox test", args, m.mailboxFlags(mailboxTestUsage, func(fs *flag.FlagSet, c *Config) {
		fs.BoolVar(&refresh, "refresh", false, "get a new access token even while the cached one is good: proves the refresh token or client credential works")
		fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM file of extra CAs to trust for mail servers (env FETCHER_CA_FILE)")
		fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "longest wait to connect to a mail server, TLS handshake included (env FETCHER_DIAL_TIMEOUT)")
		fs.DurationVar(&c.CommandTimeout, "command-timeout", c.CommandTimeout, "longest wait for a mail server's answer to a command (env FETCHER_COMMAND_TIMEOUT)")
		fs.BoolVar(&c.ProtocolTrace, "protocol-trace", c.ProtocolTrace, "write the IMAP/POP3/SMTP conversation to stderr, credentials redacted (env FETCHER_PROTOCOL_TRACE)")
	}))
	if err != nil {
		return err
	}
	log := m.logger(cfg)
	db, listed, err := m.openMailbox(ctx, cfg, ref)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	mb, err := db.Mailboxes().Get(ctx, listed.ID)
	if err != nil {
		return fmt.Errorf("mailbox %d %q: %w", listed.ID, listed.Name, err)
	}
	runner, err := newRunner(cfg, db, log, m.Stderr)
	if err != nil {
		return &usageError{err}
	}
	fmt.Fprintf(m.Stdout, "Testing mailbox %d %q (%s, %s at %s)\n", mb.ID, mb.Name, mb.Protocol, mb.Username, server(mb))
	if !mb.Enabled {
		fmt.Fprintln(m.Stdout, "  (the mailbox is disabled: no worker fetches it)")
	}
	res := runner.Probe(ctx, mb, fetch.ProbeOptions{Refresh: refresh, Step: func(s fetch.ProbeStep) {
		// The stored text names no mailbox ("<mailbox name>"); here it is known.
		s.Message = strings.ReplaceAll(s.Message, `"<mailbox name>"`, strconv.Quote(mb.Name))
		m.printStep(s)
	}})
	if res.Warning != "" {
		fmt.Fprintf(m.Stdout, "Warning: %s\n", res.Warning)
	}
	if res.OK() {
		fmt.Fprintln(m.Stdout, "Every step passed. Nothing was fetched, and nothing changed on the server or in the database but the tokens.")
		return nil
	}
	for _, s := range res.Steps {
		if s.Err != nil && s.Status != "" {
			fmt.Fprintf(m.Stdout, "A pass would set status %s with this error. The mailbox's status and last_error were left as they are.\n", s.Status)
			break
		}
	}
	return fmt.Errorf("mailbox %q: %w (%w)", mb.Name, errProbeFailed, fetch.ProbeFailed(res))
}

// printStep prints one step of mailbox test as it ends.
func (m *Main) printStep(s fetch.ProbeStep) {
	switch {
	case s.Skipped != "":
		fmt.Fprintf(m.Stdout, "  %-5s %-9s %8s  %s\n", "skip", s.Name, "", s.Skipped)
	case s.Err != nil:
		fmt.Fprintf(m.Stdout, "  %-5s %-9s %8s\n", "FAIL", s.Name, s.Duration.Round(time.Millisecond))
		for _, l := range strings.Split(s.Message, "\n") {
			fmt.Fprintf(m.Stdout, "        %s\n", l)
		}
	default:
		fmt.Fprintf(m.Stdout, "  %-5s %-9s %8s  %s\n", "ok", s.Name, s.Duration.Round(time.Millisecond), s.Detail)
	}
}
