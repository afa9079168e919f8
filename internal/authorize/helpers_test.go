package authorize_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/logtest"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

const (
	clientID = "app-1"
	secret   = "app-1-secret-value"
	tenant   = "contoso.example"
	user     = "support@contoso.example"
	loopback = "http://127.0.0.1/testApp/"
	webApp   = "https://helpdesk.example.com/oauth/callback"
)

type testBundle struct {
	srv   *oauthtest.Server
	flow  *authorize.Flow
	out   *logtest.Buffer // what the admin reads
	logs  *logtest.Buffer // the token request log
	saved chan oauth.Token
}

// setup returns a flow for a Microsoft mailbox with redirect at a fresh
// test server; Save sends what it stores on saved.
func setup(t *testing.T, opts oauthtest.Options, redirect string) *testBundle {
	t.Helper()
	srv := oauthtest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddClient(clientID, secret)
	b := &testBundle{srv: srv, out: &logtest.Buffer{}, logs: &logtest.Buffer{}, saved: make(chan oauth.Token, 1)}
	b.flow = &authorize.Flow{
		Config: oauth.Config{Provider: oauth.Microsoft, TenantID: tenant, AuthorityURL: srv.URL(),
			ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Protocol: "imap"},
		LoginHint: user,
		Client:    &oauth.Client{Logger: slog.New(slog.NewTextHandler(b.logs, nil))},
		Out:       b.out,
		Timeout:   20 * time.Second,
		SaveFunc: func(_ context.Context, tok oauth.Token) error {
			b.saved <- tok
			return nil
		},
	}
	return b
}

type outcome struct {
	tok oauth.Token
	err error
}

// start runs fn (Browser or Device) in the background.
func start(fn func(context.Context) (oauth.Token, error)) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		tok, err := fn(context.Background())
		done <- outcome{tok, err}
	}()
	return done
}

func wait(t *testing.T, done <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("the flow did not end")
		return outcome{}
	}
}

var authorizeURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/[^\s]*/authorize\?\S+`)

// printedURL waits for the flow to print the address to open.
func printedURL(t *testing.T, out *logtest.Buffer, re *regexp.Regexp) string {
	t.Helper()
	var got string
	require.Eventually(t, func() bool {
		got = re.FindString(out.String())
		return got != ""
	}, 10*time.Second, 10*time.Millisecond, "no address printed; output: %s", out.String())
	return got
}

// consent plays the user at the provider: it opens authURL and returns where
// the provider sends the browser, without going there.
func consent(t *testing.T, authURL string) *url.URL {
	t.Helper()
	loc, err := oauthtest.NewBrowser().Consent(authURL)
	require.NoError(t, err)
	return loc
}

// browse opens u like a browser and returns the status and page.
func browse(t *testing.T, u string) (int, string) {
	t.Helper()
	status, page, err := oauthtest.NewBrowser().Open(u)
	require.NoError(t, err)
	return status, page
}

// requireNoSecrets checks that nothing the admin reads or the log holds a
// token, the code, the verifier or the client secret.
func requireNoSecrets(t *testing.T, b *testBundle, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, secret) {
		if s == "" {
			continue
		}
		require.NotContains(t, b.out.String(), s, "output leaks a secret")
		require.NotContains(t, b.logs.String(), s, "log leaks a secret")
	}
}

func codeRedemptions(srv *oauthtest.Server) int {
	n := 0
	for _, r := range srv.RequestLog() {
		if r.GrantType == "authorization_code" {
			n++
		}
	}
	return n
}

// response is one answer of the loopback listener.
type response struct {
	status int
	header http.Header
	body   string
}

// send makes one request to u with the Host header host ("" for u's host),
// as a browser, another program or a web page after DNS rebinding would,
// without keep-alive so that a single-use listener may close.
func send(t *testing.T, method, u, host string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// requireNoStore checks the headers every answer of the listener carries:
// the address it answers may hold the code, which no cache may keep and no
// referrer may carry away, and the page runs nothing.
func requireNoStore(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, "no-store", r.header.Get("Cache-Control"), "status %d", r.status)
	require.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"), "status %d", r.status)
	require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), "status %d", r.status)
	require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'", "status %d", r.status)
}

// redirectOf returns the redirect_uri and state of the printed address.
func redirectOf(t *testing.T, authURL string) (*url.URL, string) {
	t.Helper()
	q := mustQuery(t, authURL)
	u, err := url.Parse(q.Get("redirect_uri"))
	require.NoError(t, err)
	return u, q.Get("state")
}

// withQuery returns u with the query q.
func withQuery(u *url.URL, q url.Values) string {
	v := *u
	v.RawQuery = q.Encode()
	return v.String()
}
