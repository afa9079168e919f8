package oauth

import (
	"fmt"
	"log/slog"
	"time"
)

// Token is what the caller stores for a mailbox after a refresh.
type Token struct {
	AccessToken string
	// RefreshToken is the one to store from now on: the rotated token when
	// the provider returned one (Microsoft), else the one passed in (Google).
	// Empty for client credentials.
	RefreshToken string
	Expiry       time.Time // zero when the provider sent no expires_in
}

// NeedsRefresh reports whether t must be refreshed at now, refreshing before
// ahead of expiry (mailboxes.refresh_before_seconds). An empty access token or
// a zero expiry always needs a refresh; a negative before counts as zero.
func (t Token) NeedsRefresh(now time.Time, before time.Duration) bool {
	if t.AccessToken == "" || t.Expiry.IsZero() {
		return true
	}
	before = max(before, 0)
	return !now.Before(t.Expiry.Add(-before))
}

// String prints t without its tokens, so %v and %s are safe in logs.
func (t Token) String() string {
	return fmt.Sprintf("{access_token=%s refresh_token=%s expiry=%s}",
		redacted(t.AccessToken), redacted(t.RefreshToken), t.Expiry.Format(time.RFC3339))
}

// GoString keeps %#v from printing the tokens.
func (t Token) GoString() string { return "oauth.Token" + t.String() }

// LogValue keeps slog from printing the tokens.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }
