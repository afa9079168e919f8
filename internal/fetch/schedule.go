package fetch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/secret"
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
func due(mb store.Mailbox, now time.Time, keys *secret.Keyring) (bool, string) {
	if mb.ReauthFingerprint != "" && mb.ReauthFingerprint == fingerprint(mb, keys) {
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
// as its fingerprint differs. With a secret key configured the digest is
// keyed (HMAC), so the stored fingerprint tells a reader of the table
// nothing about the secrets in it; without one the secrets sit in plain
// text in the same row anyway.
func fingerprint(mb store.Mailbox, keys *secret.Keyring) string {
	return keys.Digest(
		mb.Protocol, mb.Host, strconv.Itoa(mb.Port), strconv.FormatBool(mb.UseSSL),
		strconv.FormatBool(mb.StartTLS), mb.Username, mb.AuthType, mb.Password,
		mb.OAuthProvider, mb.OAuthGrant, mb.TenantID, mb.ClientID, mb.ClientSecret,
		mb.ClientCertificate, mb.ClientPrivateKey, mb.RedirectURL, mb.Scopes,
		mb.AuthorityURL, mb.AuthURL, mb.TokenURL, mb.RefreshToken, mb.Folder,
		mb.AfterFetch, mb.MoveToFolder, mb.TLSCACert, strconv.FormatBool(mb.TLSSkipVerify),
		strconv.FormatBool(mb.AllowPlaintext), strconv.FormatInt(mb.MaxMessageBytes, 10),
		strconv.Itoa(mb.RefreshBeforeSeconds),
	)
}

// failure decides how a failed mailbox waits: parked until its row
// changes when only a changed row can fix the error, else backed off.
func failure(mb store.Mailbox, err error, now time.Time, keys *secret.Keyring) store.Failure {
	status, msg := classify(mb, err, now)
	f := store.Failure{Status: status, Message: msg}
	if needsNewSettings(err) {
		f.Fingerprint = fingerprint(mb, keys)
		return f
	}
	wait := backoff(mb.ConsecutiveFailures+1, rand.Float64())
	var oe *oauth.Error
	if errors.As(err, &oe) && oe.RetryAfter > wait {
		wait = min(oe.RetryAfter, maxRetryAfter)
	}
	f.NextAttempt = now.Add(wait)
	return f
}

// needsNewSettings reports errors whose only fix is a change to the
// mailbox row, so retrying before the row changes just replays a dead
// credential: no refresh token, a refresh token the provider declared
// dead, a wrong or expired client secret, an unusable column. Everything
// else backs off and recovers by itself once fixed elsewhere (consent or
// policies in Entra ID, a certificate uploaded to the app registration, a
// clock put right): parking those would wait forever for a row change
// that never comes.
func needsNewSettings(err error) bool {
	var cfg *ConfigError
	var ocfg *oauth.ConfigError
	var oe *oauth.Error
	switch {
	case errors.Is(err, errNoRefreshToken), errors.As(err, &cfg):
		return true
	case errors.As(err, &ocfg):
		return !errors.Is(err, oauth.ErrNotYetValid) // a clock, not the row
	case errors.As(err, &oe):
		return rowFixes[oe.AADSTS] || (oe.AADSTS == 0 && oe.Code == "invalid_grant")
	}
	return false
}

// rowFixes are the AADSTS codes fixed only by new values in the row: a dead
// refresh token (70008 expired, 700082 unused for 90 days, 50173 revoked)
// or a wrong or expired client secret (7000215, 7000222). An invalid_grant
// without a code is Google's "Token has been expired or revoked".
var rowFixes = map[int]bool{70008: true, 700082: true, 50173: true, 7000215: true, 7000222: true}

// maxRetryAfter bounds a provider's Retry-After, so a mistaken header
// cannot silence a mailbox for days.
const maxRetryAfter = 6 * time.Hour
