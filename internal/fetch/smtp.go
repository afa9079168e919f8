package fetch

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
)

// SMTP submission ports: implicit TLS (RFC 8314) and STARTTLS (RFC 6409,
// RFC 3207).
const (
	smtpTLSPort      = 465
	smtpStartTLSPort = 587
)

// smtpSecurity maps mailboxes.smtp_security to a connection mode.
var smtpSecurity = map[string]mailbox.Security{
	"tls": mailbox.TLS, "starttls": mailbox.StartTLS, "none": mailbox.Plain,
}

// SMTPServer is where and how a mailbox sends.
type SMTPServer struct {
	Host     string
	Port     int
	Security mailbox.Security
}

// SMTPServerOf returns the mailbox's submission server: its smtp_* columns,
// or the provider's defaults (CONTEXT.md: smtp.office365.com:587 STARTTLS
// for Microsoft, per cloud; smtp.gmail.com:465 TLS for Google). Without a
// port, smtp_security picks it; without either, the provider's; a port
// alone picks TLS for 465 and STARTTLS otherwise.
func SMTPServerOf(mb store.Mailbox) (SMTPServer, error) {
	s := SMTPServer{Host: strings.TrimSpace(mb.SMTPHost), Port: mb.SMTPPort}
	defHost, defSec := smtpDefaults(mb)
	if s.Host == "" {
		s.Host = defHost
	}
	if s.Host == "" {
		return s, &ConfigError{"smtp_host", "is empty and oauth_provider " + quoteOrNone(mb.OAuthProvider) +
			" has no default: set the SMTP submission server of this mailbox, e.g. smtp.example.com (port 587 with STARTTLS)"}
	}
	sec, explicit := smtpSecurity[strings.ToLower(strings.TrimSpace(mb.SMTPSecurity))]
	switch {
	case explicit:
		s.Security = sec
	case s.Port == smtpTLSPort:
		s.Security = mailbox.TLS
	case s.Port != 0:
		s.Security = mailbox.StartTLS
	default:
		s.Security = defSec
	}
	if s.Port == 0 {
		s.Port = smtpStartTLSPort
		if s.Security == mailbox.TLS {
			s.Port = smtpTLSPort
		}
	}
	return s, nil
}

// smtpDefaults are the provider's submission host and mode.
func smtpDefaults(mb store.Mailbox) (string, mailbox.Security) {
	switch mb.OAuthProvider {
	case oauth.Microsoft:
		if mb.AuthType == "oauth2" {
			return microsoftSMTPHost(mb.AuthorityURL), mailbox.StartTLS
		}
	case oauth.Google:
		if mb.AuthType == "oauth2" {
			return "smtp.gmail.com", mailbox.TLS
		}
	}
	return "", mailbox.StartTLS
}

// microsoftSMTPHost is the submission host of the Microsoft cloud the
// authority belongs to.
func microsoftSMTPHost(authority string) string {
	a := strings.ToLower(authority)
	switch {
	case strings.Contains(a, "microsoftonline.us"):
		return "smtp.office365.us"
	case strings.Contains(a, "microsoftonline.cn"):
		return "smtp.partner.outlook.cn"
	}
	return "smtp.office365.com"
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

// SenderAddress is the From of the mailbox's mail: smtp_from, else the
// username the mailbox logs in with.
func SenderAddress(mb store.Mailbox) string {
	if a := strings.TrimSpace(mb.SMTPFrom); a != "" {
		return a
	}
	return strings.TrimSpace(mb.Username)
}

// smtpUsername is who logs in to send: smtp_username, else username.
func smtpUsername(mb store.Mailbox) string {
	if u := strings.TrimSpace(mb.SMTPUsername); u != "" {
		return u
	}
	return mb.Username
}

// ownAddresses are every address of the mailbox: mail from any of them is
// never acknowledged, or the mailbox would answer itself.
func ownAddresses(mb store.Mailbox) []string {
	var own []string
	for _, a := range []string{mb.Username, mb.SMTPFrom, mb.SMTPUsername} {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(own, a) {
			own = append(own, a)
		}
	}
	return own
}

// SendOAuthConfig is the mailbox's OAuth settings for sending: the
// fetching settings with the SMTP protocol, so Microsoft's default scope
// is SMTP.Send, and smtp_scopes when set. For Google, app-only Microsoft
// and custom providers without smtp_scopes the scopes are the fetching
// ones, and one token serves both.
func SendOAuthConfig(mb store.Mailbox) oauth.Config {
	cfg := OAuthConfig(mb)
	cfg.Protocol = "smtp"
	switch {
	case strings.TrimSpace(mb.SMTPScopes) != "":
		cfg.Scopes = strings.Fields(mb.SMTPScopes)
	case mb.OAuthProvider == oauth.Custom:
		// A custom provider has no default scopes: the fetching token's
		// are the best guess, and the same token then serves both.
	default:
		cfg.Scopes = nil
	}
	return cfg
}

// sharedToken reports whether the fetching token can send too: both ask
// for the same scopes.
func sharedToken(mb store.Mailbox) bool {
	a, b := OAuthConfig(mb).EffectiveScopes(), SendOAuthConfig(mb).EffectiveScopes()
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// AuthorizeConfig is the OAuth settings `fetcher authorize` asks consent
// for: the fetching scopes and, when the mailbox sends, the sending ones,
// so one sign-in covers both (Microsoft grants scopes of one resource
// together).
func AuthorizeConfig(mb store.Mailbox) oauth.Config {
	cfg := OAuthConfig(mb)
	if !mb.SMTPEnabled || mb.AuthType != "oauth2" || sharedToken(mb) {
		return cfg
	}
	scopes := cfg.EffectiveScopes()
	for _, s := range SendOAuthConfig(mb).EffectiveScopes() {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	cfg.Scopes = scopes
	return cfg
}

// ValidateSMTP checks a sending mailbox's smtp_* columns.
func ValidateSMTP(mb store.Mailbox) error {
	if strings.TrimSpace(mb.SMTPHost) != "" {
		if p := hostProblem(mb.SMTPHost); p != "" {
			return &ConfigError{"smtp_host", fmt.Sprintf("%q %s: set only the SMTP server's name, e.g. smtp.office365.com", mb.SMTPHost, p)}
		}
	}
	if mb.SMTPPort < 0 || mb.SMTPPort > 65535 {
		return &ConfigError{"smtp_port", fmt.Sprintf("%d is not a port: use 587 (STARTTLS) or 465 (TLS), or NULL for the provider's", mb.SMTPPort)}
	}
	if err := validateSMTPSecurity(mb); err != nil {
		return err
	}
	if a := strings.TrimSpace(mb.SMTPFrom); a != "" {
		if addr, err := mail.ParseAddress(a); err != nil || addr.Address != a {
			return &ConfigError{"smtp_from", fmt.Sprintf("%q is not a bare email address: set the address mail is sent from, e.g. support@example.com (the display name goes in smtp_from_name)", a)}
		}
	}
	if strings.ContainsAny(mb.SMTPFromName, "\r\n") {
		return &ConfigError{"smtp_from_name", "contains a line break: set a one-line display name, e.g. Support"}
	}
	return nil
}

func validateSMTPSecurity(mb store.Mailbox) error {
	v := strings.ToLower(strings.TrimSpace(mb.SMTPSecurity))
	sec, known := smtpSecurity[v]
	switch {
	case v != "" && !known:
		return &ConfigError{"smtp_security", fmt.Sprintf("%q is not a mode: use starttls (port 587), tls (port 465), or NULL to follow the port", mb.SMTPSecurity)}
	case sec == mailbox.Plain && known && !mb.AllowPlaintext:
		return &ConfigError{"smtp_security", "is none, so the password or token would cross the network unencrypted: use starttls (port 587) or tls (port 465); none needs allow_plaintext = true and is only for a local test server"}
	case known && sec == mailbox.StartTLS && mb.SMTPPort == smtpTLSPort:
		return &ConfigError{"smtp_security", "is starttls but port 465 is TLS from the first byte (RFC 8314): set smtp_security = tls, or smtp_port = 587"}
	case known && sec == mailbox.TLS && mb.SMTPPort == smtpStartTLSPort:
		return &ConfigError{"smtp_security", "is tls but port 587 takes a plain connection that STARTTLS upgrades: set smtp_security = starttls, or smtp_port = 465"}
	}
	return nil
}

// sendingWarning warns when a ticket type of a mailbox that does not send
// asks for notifications: they would never go out, and nobody would know.
func (r *Runner) sendingWarning(ctx context.Context, log *slog.Logger, mb store.Mailbox) string {
	if mb.SMTPEnabled {
		return ""
	}
	tts, err := r.DB.Mailboxes().TicketTypes(ctx, mb.ID)
	if err != nil {
		log.Error("cannot read ticket types", "error", err)
		return ""
	}
	for _, tt := range tts {
		var wants []string
		if strings.TrimSpace(tt.AdminEmail) != "" && (tt.NotifyNew || tt.NotifyReplies) {
			wants = append(wants, "notifications to admin_email")
		}
		if tt.Acknowledge {
			wants = append(wants, "acknowledgements to requesters")
		}
		if len(wants) > 0 {
			return fmt.Sprintf("ticket type %q asks for %s, but this mailbox does not send mail (smtp_enabled is false). Do this: set smtp_enabled = true (for Microsoft 365, also add the SMTP.Send permission and run fetcher authorize again; docs/notifications.md), or set notify_new = false and acknowledge = false on the ticket type",
				tt.Name, strings.Join(wants, " and "))
		}
	}
	return ""
}
