package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/oauth2"
)

// Grants of the one-time sign-in (fetcher authorize), for [Client.Request]
// and [Error.Grant]. The worker itself only uses [GrantRefreshToken] and
// [GrantClientCredentials].
const (
	// GrantAuthorizationCode redeems the code a browser brought back
	// (RFC 6749 section 4.1.3).
	GrantAuthorizationCode = "authorization_code"
	// GrantDeviceCode is the device authorization grant (RFC 8628).
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// doAuthorizeAgain replaces the worker's advice ("the worker retries") on a
// temporary failure of a sign-in: nobody retries it but the admin.
const doAuthorizeAgain = "nothing was stored; run fetcher authorize again " +
	"(after a few minutes if the provider is busy)"

// Request runs fn, an x/oauth2 call to cfg's provider that [Client.Token]
// does not make (oauth2.Config.Exchange, DeviceAuth or DeviceAccessToken),
// the way Token makes its own: through c.HTTPClient with a
// client-request-id on every request, logged in one line without secrets,
// and with the error translated into an [*Error] (or a wrapped network
// error) whose Advice says what to do. grant names the request in the log
// and the error: [GrantAuthorizationCode] or [GrantDeviceCode]. secrets (the
// code, the PKCE verifier, a client assertion) are scrubbed from any text the
// server echoes, as is cfg.ClientSecret.
func (c *Client) Request(ctx context.Context, cfg Config, grant string, fn func(ctx context.Context) error, secrets ...string) error {
	ep, err := cfg.Endpoint()
	if err != nil {
		return fmt.Errorf("oauth settings: %w", err)
	}
	tr := &requestIDTransport{}
	start := c.now()
	err = fn(context.WithValue(ctx, oauth2.HTTPClient, c.httpClient(tr)))
	if err != nil {
		err = c.translate(err, grant, tr.lastID(), append(slices.Clone(secrets), cfg.ClientSecret)...)
		var e *Error
		if errors.As(err, &e) && !e.Reauth {
			e.Advice = doAuthorizeAgain
		}
	}
	logged := cfg
	logged.Grant = grant // the log line names the grant of this request
	c.log(ctx, logged, ep.TokenURL, tr.lastID(), start, err)
	return err
}
