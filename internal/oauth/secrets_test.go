package oauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// TestNoSecretsInLogsOrErrors runs successes, every kind of failure and a
// network error with known secret values, then searches every log line and
// error string for them.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{Strict: true})
	secrets := []string{testSecret}
	var texts []string
	record := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, err))
		}
	}
	ctx := context.Background()

	rt := b.refreshToken()
	tok, err := b.client.Token(ctx, b.cfg, rt)
	require.NoError(t, err)
	secrets = append(secrets, rt, tok.RefreshToken, tok.AccessToken)
	texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", tok, tok, tok, tok),
		fmt.Sprintf("%v|%+v|%#v|%s", b.cfg, b.cfg, b.cfg, b.cfg))
	b.client.Logger.Info("values", "cfg", b.cfg, "token", tok)

	_, err = b.client.Token(ctx, b.cfg, rt) // reused: strict server refuses
	record(err)
	for _, f := range []oauthtest.Failure{oauthtest.WrongSecret(), oauthtest.ExpiredRefreshToken(),
		oauthtest.GoogleExpiredOrRevoked(), oauthtest.Unavailable(), oauthtest.BadGateway()} {
		b.srv.FailNext(f)
		_, err = b.client.Token(ctx, b.cfg, tok.RefreshToken)
		record(err)
	}
	wrong := b.cfg
	wrong.ClientSecret = "Wr0ng~secretVALUE.0123456789abcdefgh"
	secrets = append(secrets, wrong.ClientSecret)
	_, err = b.client.Token(ctx, wrong, tok.RefreshToken)
	record(err)

	// A custom token URL with a key in its query, on a closed server.
	closed := oauthtest.NewServer(oauthtest.Options{})
	closed.Close()
	custom := oauth.Config{Provider: oauth.Custom, ClientID: testClientID, ClientSecret: testSecret,
		TokenURL: closed.TokenURL("") + "?key=QueryKeySecret12345", Scopes: []string{"x"}}
	secrets = append(secrets, "QueryKeySecret12345")
	_, err = b.client.Token(ctx, custom, tok.RefreshToken)
	require.Error(t, err)
	record(err)

	require.Len(t, texts, 2+8*2)
	texts = append(texts, b.logs.String())
	for _, text := range texts {
		for _, secret := range secrets {
			require.False(t, strings.Contains(text, secret), "secret %.12s... leaked in %q", secret, text)
		}
	}
	require.Equal(t, 9, strings.Count(b.logs.String(), "oauth token request"))
}

// TestLoggerFields checks one log line holds exactly the allowed keys.
func TestLoggerFields(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	logs := &syncBuffer{}
	b.client.Logger = slog.New(slog.NewJSONHandler(logs, nil))

	_, err := b.client.Token(context.Background(), b.cfg, b.refreshToken())
	require.NoError(t, err)

	line := logs.String()
	for _, key := range []string{`"provider":"microsoft"`, `"token_host":"127.0.0.1:`,
		`"grant":"refresh_token"`, `"client_request_id":"`, `"outcome":"ok"`, `"duration_ms":`} {
		require.Contains(t, line, key)
	}
	require.Equal(t, 9, strings.Count(line, `":`), "log line has unexpected keys: %s", line)
}
