// Package oauth gets access tokens for OAuth-protected mailboxes (IMAP, POP3
// and SMTP over SASL XOAUTH2) from Microsoft, Google or a custom provider.
//
// The package does no database access: [Client.Token] takes a mailbox's
// [Config] and its current refresh token and returns a [Token]. The caller
// must persist the returned refresh token whenever it differs from the one it
// passed in (Microsoft rotates refresh tokens on every refresh), in the same
// transaction as the new expiry, before it uses the access token.
//
// Failures from the token endpoint come back as [*Error], classified once at
// the package boundary: [NeedsReauth] reports that a person must act (set the
// mailbox to needs_reauth and show [Error.Advice]); [IsTemporary] reports that
// the worker should back off and retry, keeping the stored tokens.
//
// The app authenticates with a client secret or, as Microsoft recommends, a
// certificate credential: [Config.ClientAuthParams] signs a client assertion
// (RFC 7523) with the private key for every token request.
//
// Nothing in this package logs or returns a client secret, private key,
// client assertion, refresh token, access token or request body.
package oauth
