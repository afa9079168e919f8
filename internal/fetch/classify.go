package fetch

import (
	"errors"
	"strconv"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/store"
)

// classify turns a mailbox's failure into its status and the message an
// admin reads in last_error: needs_reauth when a person must act on the
// credentials, failing otherwise (retried every pass).
func classify(mb store.Mailbox, err error, now time.Time) (status, message string) {
	var cfgErr *ConfigError
	var oauthCfg *oauth.ConfigError
	switch {
	case errors.As(err, &cfgErr), errors.As(err, &oauthCfg):
		return store.StatusFailing, err.Error()
	case secretExpired(mb, err, now):
		return store.StatusNeedsReauth, warning(mb, now) + ". The provider said: " + err.Error()
	case errors.Is(err, errNoRefreshToken):
		return store.StatusNeedsReauth, "no refresh token is stored for mailbox " + mb.Name + ". Do this: run fetcher authorize " + strconv.Quote(mb.Name) + " to sign in once and store one (docs/microsoft365.md, step 6)"
	case oauth.NeedsReauth(err):
		return store.StatusNeedsReauth, err.Error()
	case mailbox.IsAuth(err):
		return store.StatusNeedsReauth, err.Error() + ". Do this: " + loginAdvice(mb)
	}
	return store.StatusFailing, err.Error()
}

// secretExpired reports a refused client whose secret is past the expiry
// the admin recorded: the likely cause, named first.
func secretExpired(mb store.Mailbox, err error, now time.Time) bool {
	var oe *oauth.Error
	return errors.As(err, &oe) && oe.Code == "invalid_client" && !OAuthConfig(mb).UsesCertificate() &&
		!mb.ClientSecretExpiresAt.IsZero() && now.After(mb.ClientSecretExpiresAt)
}

// loginAdvice says what to check when the server refuses a login although
// the token endpoint issued a token.
func loginAdvice(mb store.Mailbox) string {
	switch {
	case mb.AuthType == "password":
		return "check the password; Microsoft 365 and Gmail refuse passwords for IMAP and POP3, use auth_type oauth2"
	case mb.OAuthGrant == oauth.GrantClientCredentials:
		return "app-only access needs, in Exchange Online PowerShell, New-ServicePrincipal -AppId <client_id> -ObjectId <enterprise app object id> and Add-MailboxPermission -Identity " + mb.Username + " -User <service principal id> -AccessRights FullAccess, plus admin consent for IMAP.AccessAsApp/POP.AccessAsApp"
	case mb.OAuthProvider == oauth.Microsoft:
		return "check that username is the mailbox the token was issued for (or one the user may access), that IMAP/POP is enabled for it in Exchange, and that scopes include https://outlook.office.com/IMAP.AccessAsUser.All (not a graph.microsoft.com scope)"
	default:
		return "check that username matches the account that authorized, and that the token's scopes allow mail access (Google: https://mail.google.com/)"
	}
}
