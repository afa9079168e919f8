package oauth_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"
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
			//nolint:testifylint // NotContains would print the whole secret on failure
			require.False(t, strings.Contains(text, secret), "secret %.12s... leaked in %q", secret, text)
		}
	}
	require.Equal(t, 9, strings.Count(b.logs.String(), "oauth token request"))
}

// TestLoggerFields checks one log line holds exactly the allowed keys.
func TestLoggerFields(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	logs := &logtest.Buffer{}
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

// TestNoKeyMaterialInLogsOrErrors does the same for a certificate
// credential: no line of a private key and no client assertion (a
// credential for 10 minutes) may show up in a log line or an error string.
func TestNoKeyMaterialInLogsOrErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{})
	sent := &assertionRecorder{}
	b.client.HTTPClient = &http.Client{Transport: sent}
	now := b.clock.Now()
	good := newCert(t, certKey(), now.Add(-time.Hour), 365*24*time.Hour)
	other := newCert(t, otherKey(), now.Add(-time.Hour), 365*24*time.Hour)
	ec := newCert(t, ecKey(t), now.Add(-time.Hour), 365*24*time.Hour)
	expired := newCert(t, certKey(), now.Add(-400*24*time.Hour), 365*24*time.Hour)
	b.srv.AddClientCertificate(testClientID, good.Cert)
	cfg := withCert(b.cfg, good)
	var texts []string
	record := func(err error) {
		require.Error(t, err)
		texts = append(texts, err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, err))
	}
	ctx := context.Background()

	tok, err := b.client.Token(ctx, cfg, b.refreshToken())
	require.NoError(t, err)
	cc := cfg
	cc.Grant = oauth.GrantClientCredentials
	_, err = b.client.Token(ctx, cc, "")
	require.NoError(t, err)
	texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", cfg, cfg, cfg, cfg))
	b.client.Logger.Info("values", "cfg", cfg)

	for _, f := range []oauthtest.Failure{oauthtest.CertificateNotRegistered(),
		oauthtest.AssertionNotInTimeRange(), oauthtest.AssertionReplayed()} {
		b.srv.FailNext(f)
		_, err = b.client.Token(ctx, cfg, tok.RefreshToken)
		record(err)
	}
	_, err = b.client.Token(ctx, withCert(b.cfg, other), tok.RefreshToken) // not registered
	record(err)
	for _, bad := range []oauth.Config{withCert(b.cfg, ec), withCert(b.cfg, expired),
		func() oauth.Config { c := withCert(b.cfg, good); c.ClientPrivateKey = other.KeyPEM; return c }(),
		func() oauth.Config { c := withCert(b.cfg, good); c.ClientCertificate = good.KeyPEM; return c }(),
	} {
		_, err = b.client.Token(ctx, bad, tok.RefreshToken)
		record(err)
		record(bad.Validate())
	}

	secrets := append(append(keyMaterial(good.KeyPEM), keyMaterial(other.KeyPEM)...), keyMaterial(ec.KeyPEM)...)
	assertions := sent.all()
	require.Len(t, assertions, 6)
	for _, a := range assertions {
		require.NotEmpty(t, a)
		secrets = append(secrets, a, a[strings.LastIndex(a, ".")+1:]) // the whole JWT, and its signature
	}
	texts = append(texts, b.logs.String())
	for _, text := range texts {
		for _, secret := range secrets {
			//nolint:testifylint // NotContains would print the whole secret on failure
			require.False(t, strings.Contains(text, secret), "secret %.12s... leaked in %q", secret, text)
		}
	}
	require.Equal(t, 6, strings.Count(b.logs.String(), "oauth token request"))
}

// assertionRecorder is a transport that keeps the client_assertion of every
// request it passes on.
type assertionRecorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *assertionRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	form, _ := url.ParseQuery(string(body))
	r.mu.Lock()
	r.sent = append(r.sent, form.Get("client_assertion"))
	r.mu.Unlock()
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultTransport.RoundTrip(req)
}

func (r *assertionRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}
