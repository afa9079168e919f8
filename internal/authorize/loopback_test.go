package authorize_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

func TestBrowserLoopback(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)

	q := mustQuery(t, authURL)
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.NotEmpty(t, q.Get("code_challenge"))
	require.GreaterOrEqual(t, len(q.Get("state")), 32, "state must be random and long")
	require.Equal(t, user, q.Get("login_hint"))
	require.Equal(t, "query", q.Get("response_mode"))
	require.Equal(t, "offline_access https://outlook.office.com/IMAP.AccessAsUser.All", q.Get("scope"))
	redirect, err := url.Parse(q.Get("redirect_uri"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", redirect.Hostname())
	require.NotEmpty(t, redirect.Port(), "a redirect_url without port gets the listener's port")
	require.Equal(t, "/testApp/", redirect.Path)
	requireListensOnly(t, "127.0.0.1", redirect.Port())

	// The browser: the provider consents and redirects to the listener.
	loc := consent(t, authURL)
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)
	r := send(t, http.MethodGet, loc.String(), "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Contains(t, r.body, "You can close this window")
	requireNoStore(t, r)

	o := wait(t, done)
	require.NoError(t, o.err)
	saved := <-b.saved
	require.Equal(t, o.tok, saved)
	require.NotEmpty(t, saved.RefreshToken)
	got, ok := b.srv.AccessTokenUser(saved.AccessToken)
	require.True(t, ok, "the stored access token must be one the provider issued")
	require.Equal(t, user, got)
	require.WithinDuration(t, time.Now().Add(oauthtest.DefaultAccessTokenLifetime), saved.Expiry, time.Minute)
	requireNoSecrets(t, b, code, saved.RefreshToken, saved.AccessToken)
	for _, s := range []string{code, saved.RefreshToken, saved.AccessToken} {
		require.NotContains(t, r.body, s, "the page must not show a code or token")
	}
	require.Contains(t, b.logs.String(), "grant=authorization_code")
	require.Contains(t, b.logs.String(), "client_request_id=")

	// Single use: the listener is gone once the answer was used.
	_, err = net.DialTimeout("tcp", redirect.Host, time.Second)
	require.Error(t, err, "the listener must close after its one answer")
}

// requireListensOnly checks that the listener answers on ip and on no
// other address of the machine: not the other loopback address, not an
// address other machines reach (which 0.0.0.0 or :: would give them).
func requireListensOnly(t *testing.T, ip, port string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	requireNotListening(t, port, ip)
}

// requireNotListening checks that nothing answers on port on any address of
// the machine but except.
func requireNotListening(t *testing.T, port, except string) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	others := []string{"127.0.0.1", "::1"}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			others = append(others, ipn.IP.String())
		}
	}
	for _, ip := range others {
		if ip == except {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second)
		if err == nil {
			_ = c.Close()
			t.Fatalf("something listens on %s port %s, want only %q", ip, port, except)
		}
	}
}

func TestBrowserLoopbackPortAndPathFromURL(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	b := setup(t, oauthtest.Options{}, "http://localhost:"+port+"/cb")
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	require.Equal(t, "http://localhost:"+port+"/cb", mustQuery(t, authURL).Get("redirect_uri"))

	requireListensOnly(t, "127.0.0.1", port)

	// The browser connects to 127.0.0.1 and names localhost in Host.
	r := send(t, http.MethodGet, "http://127.0.0.1:"+port+"/other?code=x&state=y", "localhost:"+port)
	require.Equal(t, http.StatusNotFound, r.status, "only the redirect path answers")
	requireNoStore(t, r)
	loc := consent(t, authURL)
	r = send(t, http.MethodGet, "http://127.0.0.1:"+port+loc.RequestURI(), "localhost:"+port)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, wait(t, done).err)
	require.NotEmpty(t, (<-b.saved).RefreshToken)
}

func TestBrowserLoopbackRejectsWrongState(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	loc := consent(t, authURL)

	// A forged (or stale) answer: a real code, another state.
	forged := *loc
	q := forged.Query()
	q.Set("state", "forged-state")
	forged.RawQuery = q.Encode()
	status, page := browse(t, forged.String())
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, page, "state does not match")
	require.Zero(t, codeRedemptions(b.srv), "a wrong state must not redeem the code")
	require.Empty(t, b.saved, "a wrong state must store nothing")
	require.Contains(t, b.out.String(), "wrong state")

	// The flow is still waiting for its own answer, which works.
	status, page = browse(t, loc.String())
	require.Equal(t, http.StatusOK, status, page)
	require.NoError(t, wait(t, done).err)
	require.Equal(t, 1, codeRedemptions(b.srv))
}

func TestBrowserLoopbackAccessDenied(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{DenyConsent: true}, loopback)
	done := start(b.flow.Browser)
	status, page := browse(t, printedURL(t, b.out, authorizeURL))
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, page, "Authorization failed")
	require.Contains(t, page, "access_denied AADSTS65004: User declined to consent to access the app.")

	o := wait(t, done)
	var ae *authorize.AnswerError
	require.ErrorAs(t, o.err, &ae)
	require.Equal(t, "access_denied", ae.Code)
	require.Contains(t, o.err.Error(), "accept the requested permissions")
	require.Contains(t, o.err.Error(), "--admin-consent")
	require.Empty(t, b.saved)
	require.Zero(t, codeRedemptions(b.srv))
}

func TestBrowserLoopbackTokenEndpointRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	b.srv.FailNext(oauthtest.WrongSecret())
	done := start(b.flow.Browser)
	loc := consent(t, printedURL(t, b.out, authorizeURL))
	code := loc.Query().Get("code")
	r := send(t, http.MethodGet, loc.String(), "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.body, "AADSTS7000215")
	requireNoStore(t, r)

	o := wait(t, done)
	require.ErrorContains(t, o.err, "token endpoint refused the authorization code: invalid_client AADSTS7000215")
	require.ErrorContains(t, o.err, "Secret ID")
	require.Empty(t, b.saved)
	requireNoSecrets(t, b, code)
	for _, s := range []string{code, secret} {
		require.NotContains(t, o.err.Error(), s, "the error must not hold the code or secret")
		require.NotContains(t, r.body, s, "the page must not show the code or secret")
	}
}

func TestBrowserLoopbackTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	b.flow.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := b.flow.Browser(t.Context())
	require.ErrorIs(t, err, authorize.ErrTimeout)
	require.ErrorContains(t, err, "within 300ms")
	require.Less(t, time.Since(start), 5*time.Second)
	require.Empty(t, b.saved)

	redirect, err := url.Parse(mustQuery(t, printedURL(t, b.out, authorizeURL)).Get("redirect_uri"))
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", redirect.Host, time.Second)
	require.Error(t, err, "the listener must close on timeout")
}

func TestBrowserLoopbackPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	b := setup(t, oauthtest.Options{}, "http://127.0.0.1:"+port+"/cb")
	_, err = b.flow.Browser(t.Context())
	require.ErrorContains(t, err, "listen for the browser on 127.0.0.1:"+port)
}

func TestBrowserNoRefreshToken(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	// A custom provider asked without offline_access: the test server, like
	// Microsoft, then returns no refresh token.
	b.flow.Config.Provider = "custom"
	b.flow.Config.AuthURL = b.srv.URL() + "/authorize"
	b.flow.Config.TokenURL = b.srv.TokenURL("")
	b.flow.Config.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All"}
	done := start(b.flow.Browser)
	status, page := browse(t, printedURL(t, b.out, regexp.MustCompile(`http://127\.0\.0\.1:\d+/authorize\?\S+`)))
	require.Equal(t, http.StatusBadRequest, status, page)
	o := wait(t, done)
	require.ErrorContains(t, o.err, "returned no refresh token")
	require.ErrorContains(t, o.err, "offline_access")
	require.Empty(t, b.saved)
}

func TestBrowserRefusesAppOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	b.flow.Config.Grant = "client_credentials"
	_, err := b.flow.Browser(t.Context())
	require.ErrorIs(t, err, authorize.ErrAppOnly)
	_, err = b.flow.Device(t.Context())
	require.ErrorIs(t, err, authorize.ErrAppOnly)
}

func TestBrowserNeedsRedirectURL(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, "")
	_, err := b.flow.Browser(t.Context())
	require.ErrorContains(t, err, "redirect_url is empty")
	require.ErrorContains(t, err, "--device")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	return port
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Query()
}

func TestBrowserLoopbackSaveFails(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	b.flow.SaveFunc = func(context.Context, oauth.Token) error { return errors.New("database is down") }
	done := start(b.flow.Browser)
	status, page := browse(t, printedURL(t, b.out, authorizeURL))
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, page, "store the tokens: database is down")
	require.NotContains(t, page, "You can close this window")
	require.ErrorContains(t, wait(t, done).err, "store the tokens: database is down")
}
