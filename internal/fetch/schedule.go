package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Backoff of a failing mailbox: the n-th consecutive failure waits
// min(BackoffCap, BackoffBase·2^(n−1)), ±20% jitter so mailboxes of one
// provider do not retry in lockstep, or the provider's Retry-After when
// that is longer. At the default 10-minute interval the first few retries
// are simply the next passes.
const (
	BackoffBase = time.Minute
	BackoffCap  = time.Hour
)

// backoff returns how long to wait after the n-th consecutive failure.
func backoff(n int, jitter float64) time.Duration {
	d := BackoffCap
	if n >= 1 && n <= 12 {
		d = min(BackoffCap, BackoffBase<<(n-1))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*jitter))
}

// due reports whether mb should be fetched at now; when not, it says why.
func due(mb store.Mailbox, now time.Time) (bool, string) {
	if mb.ReauthFingerprint != "" && mb.ReauthFingerprint == fingerprint(mb) {
		return false, "waiting for its settings to change: " + mb.LastError
	}
	if !mb.NextAttemptAt.IsZero() && now.Before(mb.NextAttemptAt) {
		return false, fmt.Sprintf("backing off until %s after %d failures: %s",
			mb.NextAttemptAt.UTC().Format(time.RFC3339), mb.ConsecutiveFailures, mb.LastError)
	}
	return true, ""
}

// fingerprint digests every setting an admin might change to fix a
// mailbox. A mailbox parked on a failure that only a changed row can fix
// (a dead refresh token, a wrong secret, a bad column) is retried as soon
// as its fingerprint differs. The secrets are in the same row in plain
// text until encryption at rest is configured, so their digest here adds
// nothing an attacker with the row lacks.
func fingerprint(mb store.Mailbox) string {
	h := sha256.New()
	for _, v := range []string{
		mb.Protocol, mb.Host, strconv.Itoa(mb.Port), strconv.FormatBool(mb.UseSSL),
		strconv.FormatBool(mb.StartTLS), mb.Username, mb.AuthType, mb.Password,
		mb.OAuthProvider, mb.OAuthGrant, mb.TenantID, mb.ClientID, mb.ClientSecret,
		mb.ClientCertificate, mb.ClientPrivateKey, mb.RedirectURL, mb.Scopes,
		mb.AuthorityURL, mb.AuthURL, mb.TokenURL, mb.RefreshToken, mb.Folder,
		mb.AfterFetch, mb.MoveToFolder,
	} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// failure decides how a failed mailbox waits: parked until its row
// changes when only a changed row can fix the error, else backed off.
func failure(mb store.Mailbox, err error, now time.Time) store.Failure {
	status, msg := classify(mb, err, now)
	f := store.Failure{Status: status, Message: msg}
	if needsNewSettings(err) {
		f.Fingerprint = fingerprint(mb)
		return f
	}
	wait := backoff(mb.ConsecutiveFailures+1, rand.Float64())
	var oe *oauth.Error
	if errors.As(err, &oe) && oe.RetryAfter > wait {
		wait = oe.RetryAfter
	}
	f.NextAttempt = now.Add(wait)
	return f
}

// needsNewSettings reports errors that no amount of retrying fixes: the
// provider refused the refresh token or the app's credentials, or a column
// is unusable. Consent, conditional access and a refused IMAP login can be
// fixed outside the row (in Entra ID or Exchange), so those back off
// instead and recover by themselves.
func needsNewSettings(err error) bool {
	var cfg *ConfigError
	var ocfg *oauth.ConfigError
	var oe *oauth.Error
	switch {
	case errors.Is(err, errNoRefreshToken), errors.As(err, &cfg), errors.As(err, &ocfg):
		return true
	case errors.As(err, &oe):
		if fixedOutsideRow[oe.AADSTS] {
			return false
		}
		return oe.Code == "invalid_grant" || oe.Code == "invalid_client"
	}
	return false
}

// fixedOutsideRow are AADSTS codes Microsoft sends with invalid_grant whose
// fix is in Entra ID, not in the mailbox row: consent (65001), MFA (50076,
// 50079) and Conditional Access (53003, 50158). The same refresh token
// works again once an admin has acted there.
var fixedOutsideRow = map[int]bool{65001: true, 50076: true, 50079: true, 53003: true, 50158: true}
