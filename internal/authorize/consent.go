package authorize

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

// ErrNotMicrosoft: admin consent is a Microsoft Entra ID step.
var ErrNotMicrosoft = errors.New("admin consent applies to Microsoft mailboxes only")

// AdminConsentURL returns the address where an administrator of the
// mailbox's Microsoft Entra tenant grants the app its permissions for the
// whole organization (the v2.0 admin consent endpoint,
// {authority}/{tenant}/v2.0/adminconsent), for the scopes the mailbox
// requests: the app-only /.default scope for client_credentials, else the
// delegated ones. Afterwards Microsoft sends the browser to redirect_url
// with admin_consent=True, or with an error; nothing waits for it.
//
// The tenant common becomes organizations, which the endpoint accepts;
// consumers has no administrator and is an error.
func AdminConsentURL(cfg oauth.Config) (string, error) {
	if cfg.Provider != oauth.Microsoft {
		return "", ErrNotMicrosoft
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return "", &oauth.ConfigError{Column: "client_id", Problem: "is required",
			Fix: "set it to the application (client) id of the app registration"}
	}
	switch strings.ToLower(strings.TrimSpace(cfg.TenantID)) {
	case "consumers":
		return "", errors.New("tenant_id consumers: personal Microsoft accounts have no " +
			"administrator; each user consents when signing in (fetcher authorize without --admin-consent)")
	case "", "common":
		cfg.TenantID = "organizations"
	}
	ep, err := cfg.Endpoint()
	if err != nil {
		return "", err
	}
	base, ok := strings.CutSuffix(ep.AuthURL, "/oauth2/v2.0/authorize")
	if !ok {
		return "", fmt.Errorf("unexpected Microsoft authorize URL %s", ep.AuthURL)
	}
	q := url.Values{"client_id": {cfg.ClientID}, "state": {newState()},
		"scope": {strings.Join(cfg.EffectiveScopes(), " ")}}
	if cfg.RedirectURL != "" {
		q.Set("redirect_uri", cfg.RedirectURL)
	}
	return base + "/v2.0/adminconsent?" + q.Encode(), nil
}
