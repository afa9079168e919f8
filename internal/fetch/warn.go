package fetch

import (
	"fmt"
	"time"

	"github.com/fetcherhq/fetcher/internal/store"
)

// SecretWarningWindow is how long before a client secret expires the
// fetcher starts warning.
const SecretWarningWindow = 30 * 24 * time.Hour

// warning returns what an admin should act on before it breaks, or "".
func warning(mb store.Mailbox, now time.Time) string {
	if w := certificateWarning(mb, now); w != "" {
		return w
	}
	exp := mb.ClientSecretExpiresAt
	if exp.IsZero() || mb.ClientSecret == "" {
		return ""
	}
	day := exp.UTC().Format("2006-01-02")
	if !now.Before(exp) {
		return fmt.Sprintf("the client secret expired on %s. Do this: create a new secret under the app registration's Certificates & secrets, store its value in client_secret and its expiry in client_secret_expires_at", day)
	}
	if left := exp.Sub(now); left <= SecretWarningWindow {
		return fmt.Sprintf("the client secret expires on %s (in %d days). Do this: create a new secret under the app registration's Certificates & secrets, store its value in client_secret and its expiry in client_secret_expires_at", day, int(left.Hours()/24))
	}
	return ""
}

// certificateWarning warns ahead of a certificate credential's expiry
// (the certificate itself says when).
func certificateWarning(mb store.Mailbox, now time.Time) string {
	exp, ok := OAuthConfig(mb).CredentialExpiry()
	if !ok {
		return ""
	}
	left := exp.Sub(now)
	if left > SecretWarningWindow {
		return ""
	}
	day := exp.UTC().Format("2006-01-02")
	if left <= 0 {
		return fmt.Sprintf("the client certificate expired on %s. Do this: upload a new certificate to the app registration and store it and its key in client_certificate and client_private_key", day)
	}
	return fmt.Sprintf("the client certificate expires on %s (in %d days). Do this: upload a new certificate to the app registration and store it and its key in client_certificate and client_private_key", day, int(left.Hours()/24))
}
