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
