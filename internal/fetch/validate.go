package fetch

import (
	"fmt"
	"net"
	"strings"

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

// Validate checks a mailbox row before any connection is made. OAuth
// settings are checked by oauth.Config.Validate when a token is needed.
func Validate(mb store.Mailbox) error {
	switch {
	case mb.Protocol != "imap" && mb.Protocol != "pop3":
		return &ConfigError{"protocol", fmt.Sprintf("%q is not a protocol: use imap or pop3", mb.Protocol)}
	case strings.TrimSpace(mb.Host) == "":
		return &ConfigError{"host", "is empty: set the mail server's name, e.g. outlook.office365.com"}
	case mb.Port < 1 || mb.Port > 65535:
		return &ConfigError{"port", fmt.Sprintf("%d is not a port: use 993 (IMAP over TLS) or 995 (POP3 over TLS)", mb.Port)}
	case strings.TrimSpace(mb.Username) == "":
		return &ConfigError{"username", "is empty: set the mailbox address"}
	case mb.AuthType != "oauth2" && mb.AuthType != "password":
		return &ConfigError{"auth_type", fmt.Sprintf("%q is not supported: use oauth2 or password", mb.AuthType)}
	case mb.AuthType == "password" && mb.Password == "":
		return &ConfigError{"password", "is empty while auth_type is password"}
	case !mb.UseSSL && !mb.StartTLS && !isLoopback(mb.Host):
		return &ConfigError{"use_ssl", "and starttls are both false, so the password or token would cross the network unencrypted: set use_ssl = true (port 993) or starttls = true (port 143)"}
	}
	return validateAction(mb)
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

// isLoopback reports a host on this machine, the only place a plain-text
// login is allowed (a local test server).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// effectiveAction is the after-fetch action to perform: POP3 has no \Seen
// flag, so the default mark_seen leaves the mail on the server (keep); the
// ledger of UIDLs, not a flag, keeps it from being fetched twice.
func effectiveAction(mb store.Mailbox) string {
	if mb.Protocol == "pop3" && mb.AfterFetch == store.ActionMarkSeen {
		return store.ActionKeep
	}
	return mb.AfterFetch
}
