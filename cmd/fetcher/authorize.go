package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/fetch"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
)

// maxAuthorizeTimeout bounds --timeout: a sign-in takes minutes, and the
// loopback listener (RFC 8252 section 7.3) should not stay open for days.
const maxAuthorizeTimeout = time.Hour

// authorizeOptions are the flags of `fetcher authorize`.
type authorizeOptions struct {
	device       bool
	adminConsent bool
	timeout      time.Duration
}

const authorizeUsage = `Usage: fetcher authorize [flags] MAILBOX

Signs the user of a delegated mailbox (mailboxes.name = MAILBOX) in once and
stores the refresh token, then marks the mailbox active and clears its error.
With a redirect_url on http://127.0.0.1, http://[::1] or http://localhost it
listens on that loopback address only (127.0.0.1 for localhost) for the
browser; with any other redirect_url it asks for the address the browser
ended on. --device signs in on another device instead.

Flags:
`

func (o *authorizeOptions) register(fs *flag.FlagSet, _ *Config) {
	fs.BoolVar(&o.device, "device", false, "use the device code flow: sign in on any other device (for servers without a browser)")
	fs.BoolVar(&o.adminConsent, "admin-consent", false, "print Microsoft's admin consent address for the mailbox's app and exit")
	fs.DurationVar(&o.timeout, "timeout", authorize.DefaultTimeout, "how long to wait for the sign-in (at most "+maxAuthorizeTimeout.String()+")")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), authorizeUsage)
		fs.PrintDefaults()
	}
}

func (m *Main) authorizeCmd(ctx context.Context, args []string) error {
	var o authorizeOptions
	flagArgs, names := splitOperands(args, o.register)
	cfg, err := m.config("authorize", flagArgs, o.register)
	switch {
	case err != nil:
		return err
	case len(names) != 1:
		return &usageError{fmt.Errorf("authorize takes one mailbox name (mailboxes.name), got %d: "+
			`fetcher authorize [flags] "Support inbox"`, len(names))}
	case o.timeout < time.Second:
		return &usageError{fmt.Errorf("--timeout %s is too short", o.timeout)}
	case o.timeout > maxAuthorizeTimeout:
		return &usageError{fmt.Errorf("--timeout %s is too long: at most %s, since the loopback "+
			"listener takes requests from every program on this computer while it waits", o.timeout, maxAuthorizeTimeout)}
	case o.device && o.adminConsent:
		return &usageError{errors.New("use either --device or --admin-consent")}
	}
	log := m.logger(cfg)
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	mb, err := findMailbox(ctx, db, names[0])
	if err != nil {
		return err
	}
	if o.adminConsent {
		return m.printAdminConsent(mb)
	}
	flow := &authorize.Flow{
		Config: fetch.AuthorizeConfig(mb), LoginHint: mb.Username, Timeout: o.timeout,
		Client: &oauth.Client{Logger: log}, Out: m.Stdout, In: m.Stdin,
		SaveFunc: func(ctx context.Context, tok oauth.Token) error {
			return db.Mailboxes().StoreAuthorization(ctx, mb.ID, tok)
		},
	}
	return m.authorize(ctx, flow, mb, o)
}

// authorize runs the flow and says what was stored, never a token.
func (m *Main) authorize(ctx context.Context, flow *authorize.Flow, mb store.Mailbox, o authorizeOptions) error {
	if mb.AuthType != "" && mb.AuthType != "oauth2" {
		return fmt.Errorf("mailbox %q has auth_type %s: only oauth2 mailboxes are authorized", mb.Name, mb.AuthType)
	}
	run := flow.Browser
	if o.device {
		run = flow.Device
	}
	tok, err := run(ctx)
	switch {
	case errors.Is(err, authorize.ErrAppOnly):
		return fmt.Errorf("mailbox %q: %w: run fetcher authorize --admin-consent %s", mb.Name, err, strconv.Quote(mb.Name))
	case errors.Is(err, authorize.ErrTimeout):
		return fmt.Errorf("mailbox %q: %w. Do this: run fetcher authorize %s again and finish "+
			"signing in within --timeout (now %s; e.g. --timeout 15m for longer)",
			mb.Name, err, strconv.Quote(mb.Name), flow.Timeout)
	case err != nil:
		return fmt.Errorf("mailbox %q: %w", mb.Name, err)
	}
	fmt.Fprintf(m.Stdout, "\nAuthorized mailbox %q (%s): stored its refresh token and an access token "+
		"valid until %s. Status: active, error cleared.\nNext: fetcher run --once\n",
		mb.Name, mb.Username, expiry(tok.Expiry))
	return nil
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "(no expiry sent)"
	}
	return t.Local().Format(time.DateTime)
}

// findMailbox names the mailboxes there are when name is not one of them.
func findMailbox(ctx context.Context, db *store.DB, name string) (store.Mailbox, error) {
	mb, err := db.Mailboxes().GetByName(ctx, name)
	if se := (*store.SecretError)(nil); errors.As(err, &se) && se.Column == "refresh_token" {
		return mb, nil // what cannot be decrypted is what the sign-in replaces
	}
	if !errors.Is(err, store.ErrNotFound) {
		return mb, err
	}
	all, lerr := db.Mailboxes().List(ctx)
	if lerr != nil {
		return mb, err
	}
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = strconv.Quote(m.Name)
	}
	if len(names) == 0 {
		return mb, fmt.Errorf("no mailbox is named %q: the mailboxes table is empty; add the row first (docs/microsoft365.md)", name)
	}
	return mb, fmt.Errorf("no mailbox is named %q; mailboxes.name holds %s", name, strings.Join(names, ", "))
}

// printAdminConsent prints Microsoft's admin consent address and what else
// the mailbox needs.
func (m *Main) printAdminConsent(mb store.Mailbox) error {
	cfg := fetch.OAuthConfig(mb)
	u, err := authorize.AdminConsentURL(cfg)
	if errors.Is(err, authorize.ErrNotMicrosoft) {
		return fmt.Errorf("mailbox %q uses oauth_provider %s: %w; its user consents when signing in: run fetcher authorize %s",
			mb.Name, mb.OAuthProvider, err, strconv.Quote(mb.Name))
	} else if err != nil {
		return fmt.Errorf("mailbox %q: %w", mb.Name, err)
	}
	fmt.Fprintf(m.Stdout, "Open this address as an administrator of the tenant and accept the permissions:\n\n  %s\n\n", u)
	if mb.RedirectURL != "" {
		fmt.Fprintf(m.Stdout, "Microsoft then sends the browser to %s with admin_consent=True (that page may "+
			"show an error: that is fine); error=... in that address means consent was not granted.\n", mb.RedirectURL)
	}
	if cfg.Grant == oauth.GrantClientCredentials {
		fmt.Fprintf(m.Stdout, "App-only access also needs, in Exchange Online PowerShell:\n"+
			"  New-ServicePrincipal -AppId %s -ObjectId <object id of the enterprise application>\n"+
			"  Add-MailboxPermission -Identity %s -User <service principal id> -AccessRights FullAccess\n"+
			"Then: fetcher run --once\n", mb.ClientID, mb.Username)
	} else {
		fmt.Fprintf(m.Stdout, "Then sign the mailbox's user in: fetcher authorize %s\n", strconv.Quote(mb.Name))
	}
	return nil
}

// splitOperands separates the operands from the flags, so flags may come
// before or after MAILBOX (flag.Parse stops at the first operand). On a
// flag error it returns the rest as flags, for m.config to report.
func splitOperands(args []string, register func(*flag.FlagSet, *Config)) (flags, operands []string) {
	for len(args) > 0 {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cfg Config
		cfg.registerFlags(fs)
		register(fs, &cfg)
		if fs.Parse(args) != nil {
			return append(flags, args...), operands
		}
		n := len(args) - fs.NArg()
		flags = append(flags, args[:n]...)
		if fs.NArg() == 0 {
			break
		}
		if n > 0 && args[n-1] == "--" {
			return flags, append(operands, fs.Args()...)
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return flags, operands
}
