package fetch

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"github.com/fetcherhq/fetcher/internal/store"
)

// ConfigError is a mailbox row that cannot work as written; it names the
// column and the fix.
type ConfigError struct {
	Column string
	Fix    string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("mailbox setting %s: %s", e.Column, e.Fix)
}

// Validate checks a mailbox row before any connection is made, column by
// column, and returns the first problem. OAuth settings are checked by
// oauth.Config.ValidateAt when a token is needed (see accessToken).
func Validate(mb store.Mailbox) error {
	checks := []func(store.Mailbox) error{
		validateProtocol, validateHost, validatePort, validateTransport,
		validateLogin, validateFolder, validateAction, validateRefresh, validateCACert,
	}
	for _, check := range checks {
		if err := check(mb); err != nil {
			return err
		}
	}
	return nil
}

func validateProtocol(mb store.Mailbox) error {
	if mb.Protocol != "imap" && mb.Protocol != "pop3" {
		return &ConfigError{"protocol", fmt.Sprintf("%q is not a protocol: use imap or pop3", mb.Protocol)}
	}
	return nil
}

// validateHost wants a bare host name or IP address: the scheme, port and
// TLS mode have columns of their own.
func validateHost(mb store.Mailbox) error {
	if strings.TrimSpace(mb.Host) == "" {
		return &ConfigError{"host", "is empty: set the mail server's name, e.g. outlook.office365.com"}
	}
	if p := hostProblem(mb.Host); p != "" {
		return &ConfigError{"host", fmt.Sprintf("%q %s: set only the mail server's name or IP address, e.g. outlook.office365.com", mb.Host, p)}
	}
	return nil
}

// hostProblem says what is wrong with a host column, or "".
func hostProblem(h string) string {
	switch {
	case strings.ContainsFunc(h, unicode.IsSpace):
		return "contains spaces"
	case strings.Contains(h, "://"):
		return "starts with a scheme (the port and TLS columns say how to connect)"
	case strings.Contains(h, "/"):
		return "has a path"
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	switch {
	case strings.HasPrefix(h, "["):
		return "has brackets (write an IPv6 address without them)"
	case strings.Contains(h, ":"):
		return "includes a port (put the port in the port column)"
	case !validHostname(h):
		return "is not a valid host name (letters, digits, hyphens and dots; an internationalized name in its xn-- form)"
	}
	return ""
}

// validHostname follows RFC 1123 section 2.1: dot-separated labels of 1 to
// 63 letters, digits and hyphens, not starting or ending with a hyphen, at
// most 253 characters. Underscores pass: some internal DNS names have them
// and resolvers take them.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if strings.IndexFunc(label, notHostnameChar) >= 0 {
			return false
		}
	}
	return true
}

func notHostnameChar(c rune) bool {
	letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	return !letter && (c < '0' || c > '9') && c != '-' && c != '_'
}

func validatePort(mb store.Mailbox) error {
	if mb.Port < 1 || mb.Port > 65535 {
		return &ConfigError{"port", fmt.Sprintf("%d is not a port: use %d (%s over TLS)", mb.Port, tlsPorts[mb.Protocol], strings.ToUpper(mb.Protocol))}
	}
	return nil
}

// wellKnown are the registered ports of the two protocols: implicit TLS on
// 993 and 995 (RFC 8314), a plain start upgraded by STARTTLS
// on 143 and 110 (RFC 2595).
var wellKnown = map[int]struct {
	protocol string
	tls      bool
}{143: {"imap", false}, 993: {"imap", true}, 110: {"pop3", false}, 995: {"pop3", true}}

var (
	tlsPorts   = map[string]int{"imap": 993, "pop3": 995}
	plainPorts = map[string]int{"imap": 143, "pop3": 110}
)

// validateTransport checks that the port suits the protocol and the TLS
// mode, and that the login is encrypted unless allow_plaintext says
// otherwise. use_ssl with starttls is accepted: starttls is ignored.
func validateTransport(mb store.Mailbox) error {
	wk, known := wellKnown[mb.Port]
	p, name := mb.Protocol, strings.ToUpper(mb.Protocol)
	switch {
	case known && wk.protocol != p:
		return &ConfigError{"port", fmt.Sprintf("%d is the %s port but protocol is %s: set port %d (or %d with starttls), or protocol %s",
			mb.Port, strings.ToUpper(wk.protocol), p, tlsPorts[p], plainPorts[p], wk.protocol)}
	case known && mb.UseSSL && !wk.tls:
		return &ConfigError{"use_ssl", fmt.Sprintf("is true but port %d takes a plain connection that STARTTLS upgrades: set port %d for %s over TLS, or use_ssl = false and starttls = true",
			mb.Port, tlsPorts[p], name)}
	case known && !mb.UseSSL && wk.tls:
		return &ConfigError{"use_ssl", fmt.Sprintf("is false but port %d is %s over TLS from the first byte: set use_ssl = true", mb.Port, name)}
	case !mb.UseSSL && !mb.StartTLS && !mb.AllowPlaintext:
		return &ConfigError{"use_ssl", fmt.Sprintf("and starttls are both false, so the password or token would cross the network unencrypted: set use_ssl = true (port %d) or starttls = true (port %d); allow_plaintext = true is only for a local test server",
			tlsPorts[p], plainPorts[p])}
	}
	return nil
}

func validateLogin(mb store.Mailbox) error {
	switch {
	case strings.TrimSpace(mb.Username) == "":
		return &ConfigError{"username", "is empty: set the mailbox address"}
	case mb.AuthType != "oauth2" && mb.AuthType != "password":
		return &ConfigError{"auth_type", fmt.Sprintf("%q is not supported: use oauth2 or password", mb.AuthType)}
	case mb.AuthType == "password" && mb.Password == "":
		return &ConfigError{"password", "is empty while auth_type is password: set the password, or use auth_type oauth2"}
	}
	return nil
}

func validateFolder(mb store.Mailbox) error {
	if mb.Protocol == "imap" && strings.TrimSpace(mb.Folder) == "" {
		return &ConfigError{"folder", "is empty: set it to INBOX or the name of the folder to read"}
	}
	return nil
}

// MaxRefreshBeforeSeconds bounds refresh_before_seconds. Microsoft's and
// Google's access tokens live about an hour (3599 s at the least): a
// margin near that would refresh the token on every pass.
const MaxRefreshBeforeSeconds = 1800

func validateRefresh(mb store.Mailbox) error {
	if mb.AuthType != "oauth2" {
		return nil // no token to refresh
	}
	if mb.RefreshBeforeSeconds < 0 || mb.RefreshBeforeSeconds > MaxRefreshBeforeSeconds {
		return &ConfigError{"refresh_before_seconds", fmt.Sprintf("%d is out of range: use 0 to %d (the default is 300); access tokens live about an hour, so a larger margin would refresh on every pass",
			mb.RefreshBeforeSeconds, MaxRefreshBeforeSeconds)}
	}
	return nil
}

// validateCACert checks that tls_ca_cert, when set, holds certificates.
func validateCACert(mb store.Mailbox) error {
	if strings.TrimSpace(mb.TLSCACert) == "" {
		return nil
	}
	_, err := parseCACerts(mb.TLSCACert)
	return err
}

func validateAction(mb store.Mailbox) error {
	allowed := map[string]bool{store.ActionKeep: true, store.ActionMarkSeen: true, store.ActionMove: true, store.ActionDelete: true}
	if mb.Protocol == "pop3" {
		// mark_seen is the column's default; POP3 has no flags, so it means
		// keep there (see effectiveAction).
		allowed = map[string]bool{store.ActionKeep: true, store.ActionMarkSeen: true, store.ActionDelete: true}
	}
	if !allowed[mb.AfterFetch] {
		return &ConfigError{"after_fetch", fmt.Sprintf("%q is not allowed for %s: use one of keep, mark_seen, move, delete (POP3: keep or delete)", mb.AfterFetch, mb.Protocol)}
	}
	if mb.AfterFetch == store.ActionMove && strings.TrimSpace(mb.MoveToFolder) == "" {
		return &ConfigError{"move_to_folder", "is empty while after_fetch is move: name the folder to move fetched mail to"}
	}
	if mb.MaxMessageBytes < 0 || mb.MaxMessageBytes > 0 && mb.MaxMessageBytes < MinMessageBytes {
		return &ConfigError{"max_message_bytes", fmt.Sprintf("%d is too small: use at least %d, or NULL for the default (FETCHER_MAX_MESSAGE_BYTES)", mb.MaxMessageBytes, MinMessageBytes)}
	}
	return nil
}

// MinMessageBytes is the smallest size limit allowed: below it, ordinary
// mail with a signature logo would be cut to its header.
const MinMessageBytes = 64 << 10

// effectiveAction is the after-fetch action to perform: POP3 has no \Seen
// flag, so the default mark_seen leaves the mail on the server (keep); the
// ledger of UIDLs, not a flag, keeps it from being fetched twice.
func effectiveAction(mb store.Mailbox) string {
	if mb.Protocol == "pop3" && mb.AfterFetch == store.ActionMarkSeen {
		return store.ActionKeep
	}
	return mb.AfterFetch
}
