package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// defaultTimeout bounds one token request when Client.HTTPClient is nil.
const defaultTimeout = 30 * time.Second

// Client gets access tokens from token endpoints. The zero value is ready to
// use; a Client is safe for concurrent use, but two workers must never
// refresh the same mailbox at once (a reused rotated refresh token can revoke
// the whole token family).
type Client struct {
	HTTPClient *http.Client     // nil: a client with a 30 s timeout
	Logger     *slog.Logger     // nil: no logs. Never logs a token, secret, code or body.
	Now        func() time.Time // nil: time.Now
}

// Token gets a fresh access token for cfg: the refresh_token grant with
// refreshToken (delegated) or the client_credentials grant, as cfg.Grant says.
// It makes exactly one HTTP request, always sending the scope.
//
// The returned Token carries the refresh token to store: the rotated one, or
// refreshToken when the response had none (Google). Errors are a
// [*ConfigError] (no request made), an [*Error] from the token endpoint, or a
// wrapped network error; see [NeedsReauth] and [IsTemporary].
func (c *Client) Token(ctx context.Context, cfg Config, refreshToken string) (Token, error) {
	start := c.now()
	ep, auth, err := prepare(cfg, refreshToken, start)
	if err != nil {
		return Token{}, fmt.Errorf("oauth settings: %w", err)
	}
	tr := &requestIDTransport{}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.httpClient(tr))
	tok, err := tokenRequest(cfg, ep, refreshToken, auth).Token(ctx)
	if err != nil {
		err = c.translate(err, cfg.grant(), tr.lastID(), cfg.ClientSecret, refreshToken,
			auth.Get("client_assertion"))
	}
	c.log(ctx, cfg, ep.TokenURL, tr.lastID(), start, err)
	if err != nil {
		return Token{}, err
	}
	return toToken(tok, refreshToken, start), nil
}

// prepare checks cfg at now and returns the endpoint and the client
// authentication parameters (see [Config.ClientAuthParams]).
func prepare(cfg Config, refreshToken string, now time.Time) (oauth2.Endpoint, url.Values, error) {
	if err := cfg.ValidateAt(now); err != nil {
		return oauth2.Endpoint{}, nil, err
	}
	if cfg.grant() == GrantRefreshToken && refreshToken == "" {
		return oauth2.Endpoint{}, nil, &ConfigError{"refresh_token", "is empty",
			"authorize the mailbox (fetcher authorize <mailbox>)"}
	}
	ep, err := cfg.Endpoint()
	if err != nil {
		return oauth2.Endpoint{}, nil, err
	}
	auth, err := cfg.ClientAuthParams(now, ep.TokenURL)
	return ep, auth, err
}

// tokenRequest builds the request for either grant. x/oauth2's own refresher
// (oauth2.Config.TokenSource) sends no scope, which Microsoft answers with
// AADSTS900144 on some setups, so the refresh goes through clientcredentials,
// which sends Scopes and documents overriding grant_type in EndpointParams.
// RetrieveToken still keeps the old refresh token when none comes back.
//
// The client secret or assertion goes into EndpointParams (auth), not
// ClientSecret, so a certificate credential never sends the secret. Every
// endpoint uses AuthStyleInParams, where the two are the same POST body.
func tokenRequest(cfg Config, ep oauth2.Endpoint, refreshToken string, auth url.Values) *clientcredentials.Config {
	params := url.Values{}
	for k, v := range auth {
		params[k] = v
	}
	if cfg.grant() == GrantRefreshToken {
		params.Set("grant_type", GrantRefreshToken)
		params.Set("refresh_token", refreshToken)
	}
	return &clientcredentials.Config{
		ClientID:       cfg.ClientID,
		TokenURL:       ep.TokenURL,
		Scopes:         cfg.EffectiveScopes(),
		AuthStyle:      ep.AuthStyle,
		EndpointParams: params,
	}
}

// httpClient returns a copy of c.HTTPClient whose transport adds a
// client-request-id to every request.
func (c *Client) httpClient(tr *requestIDTransport) *http.Client {
	hc := http.Client{Timeout: defaultTimeout}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	tr.base = hc.Transport
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	hc.Transport = tr
	return &hc
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// toToken converts the response. Expiry counts from the request's start on
// the injected clock, so it errs early rather than late.
func toToken(tok *oauth2.Token, oldRefresh string, start time.Time) Token {
	t := Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if t.RefreshToken == "" {
		t.RefreshToken = oldRefresh // never overwrite a stored token with ""
	}
	if d := expiresIn(tok); d > 0 {
		t.Expiry = start.Add(d)
	}
	return t
}

// expiresIn reads expires_in (RFC 6749 section 5.1), a number or, from some
// servers, a string.
func expiresIn(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	return time.Duration(secs * float64(time.Second))
}
