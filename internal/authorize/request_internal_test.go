package authorize

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// internalFlow returns a flow for a Microsoft mailbox at a fresh test server,
// its log, and a pointer to the number of saves.
func internalFlow(t *testing.T) (*Flow, *oauthtest.Server, *logtest.Buffer, *int) {
	t.Helper()
	srv := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(srv.Close)
	srv.AddClient("app-1", "app-1-secret-value")
	logs := &logtest.Buffer{}
	saves := new(int)
	f := &Flow{
		Config: oauth.Config{Provider: oauth.Microsoft, TenantID: "contoso.example", AuthorityURL: srv.URL(),
			ClientID: "app-1", ClientSecret: "app-1-secret-value", RedirectURL: "http://127.0.0.1:1/cb",
			Protocol: "imap"},
		LoginHint: "support@contoso.example",
		Client:    &oauth.Client{Logger: slog.New(slog.NewTextHandler(logs, nil))},
		SaveFunc: func(context.Context, oauth.Token) error {
			*saves++
			return nil
		},
	}
	return f, srv, logs, saves
}

var unreserved = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// TestNewRequestStateAndPKCE: the state has at least 128 random bits (RFC
// 6749 section 10.10), the verifier is 43 to 128 unreserved characters
// (RFC 7636 section 4.1), and the address carries its S256 challenge.
func TestNewRequestStateAndPKCE(t *testing.T) {
	t.Parallel()
	f, _, _, _ := internalFlow(t)
	states := map[string]bool{}
	verifiers := map[string]bool{}
	for range 50 {
		r, err := f.newRequest(f.Config.RedirectURL)
		require.NoError(t, err)

		raw, err := base64.RawURLEncoding.DecodeString(r.state)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(raw)*8, 128, "state bits")
		require.False(t, states[r.state], "state repeated")
		states[r.state] = true

		require.GreaterOrEqual(t, len(r.verifier), 43)
		require.LessOrEqual(t, len(r.verifier), 128)
		require.Regexp(t, unreserved, r.verifier)
		raw, err = base64.RawURLEncoding.DecodeString(r.verifier)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(raw)*8, 256, "verifier entropy (RFC 7636 section 7.1)")
		require.False(t, verifiers[r.verifier], "verifier repeated")
		verifiers[r.verifier] = true

		u, err := url.Parse(r.url)
		require.NoError(t, err)
		q := u.Query()
		sum := sha256.Sum256([]byte(r.verifier))
		require.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), q.Get("code_challenge"))
		require.Equal(t, "S256", q.Get("code_challenge_method"))
		require.Equal(t, r.state, q.Get("state"))
		require.NotContains(t, r.url, r.verifier, "the verifier never leaves fetcher before the exchange")
	}
}

// TestAnswer: only the exact state lets an answer's code or error through
// (RFC 6749 section 10.12).
func TestAnswer(t *testing.T) {
	t.Parallel()
	r := &request{state: "s3cr3t-state-value"}
	tests := []struct {
		name     string
		q        url.Values
		wantCode string
		wantErr  error
	}{
		{"code and state", url.Values{"code": {"c"}, "state": {r.state}}, "c", nil},
		{"nothing", url.Values{}, "", errNoAnswer},
		{"no state", url.Values{"code": {"c"}}, "", ErrStateMismatch},
		{"empty state", url.Values{"code": {"c"}, "state": {""}}, "", ErrStateMismatch},
		{"prefix of the state", url.Values{"code": {"c"}, "state": {r.state[:5]}}, "", ErrStateMismatch},
		{"state and more", url.Values{"code": {"c"}, "state": {r.state + "x"}}, "", ErrStateMismatch},
		{"error without state", url.Values{"error": {"access_denied"}}, "", ErrStateMismatch},
		{"state only", url.Values{"state": {r.state}}, "", errNoCode},
	}
	for _, tt := range tests {
		code, err := r.answer(tt.q)
		require.Equal(t, tt.wantCode, code, tt.name)
		if tt.wantErr == nil {
			require.NoError(t, err, tt.name)
		} else {
			require.ErrorIs(t, err, tt.wantErr, tt.name)
		}
	}
	_, err := r.answer(url.Values{"error": {"access_denied"}, "state": {r.state}})
	var ae *AnswerError
	require.ErrorAs(t, err, &ae)
}

// TestRedeemSendsTheVerifier: the code exchange carries this request's
// verifier, and the test server (like Microsoft) refuses the code with
// another one (AADSTS501481), so a flow that lost or mixed up its verifier
// fails. Neither the code nor a verifier shows in the error or the log.
func TestRedeemSendsTheVerifier(t *testing.T) {
	t.Parallel()
	f, _, logs, saves := internalFlow(t)
	ctx := context.Background()
	r, err := f.newRequest(f.Config.RedirectURL)
	require.NoError(t, err)
	loc, err := oauthtest.NewBrowser().Consent(r.url)
	require.NoError(t, err)
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)

	right := r.verifier
	other, err := f.newRequest(f.Config.RedirectURL)
	require.NoError(t, err)
	r.verifier = other.verifier
	_, err = f.redeem(ctx, r, code)
	var oe *oauth.Error
	require.ErrorAs(t, err, &oe)
	require.ErrorContains(t, err, "AADSTS501481")
	require.Zero(t, *saves)
	for _, s := range []string{code, right, other.verifier} {
		require.NotContains(t, err.Error(), s)
		require.NotContains(t, logs.String(), s)
	}

	r.verifier = right
	tok, err := f.redeem(ctx, r, code)
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, 1, *saves)
	for _, s := range []string{code, right, tok.RefreshToken, tok.AccessToken} {
		require.NotContains(t, logs.String(), s)
	}
}
