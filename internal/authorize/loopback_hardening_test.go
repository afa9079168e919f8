package authorize_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// TestLoopbackListensOnItsAddressOnly: the listener binds the redirect
// URL's loopback address and nothing else (RFC 8252 sections 7.3 and 8.3):
// localhost binds 127.0.0.1, not ::1 and never all interfaces.
func TestLoopbackListensOnItsAddressOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, host, listen string
	}{
		{"127.0.0.1", "127.0.0.1", "127.0.0.1"},
		{"localhost", "localhost", "127.0.0.1"},
		{"LOCALHOST", "LOCALHOST", "127.0.0.1"},
		{"[::1]", "[::1]", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.listen == "::1" {
				ln, err := net.Listen("tcp6", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				require.NoError(t, ln.Close())
			}
			b := setup(t, oauthtest.Options{}, "http://"+tt.host+"/testApp/")
			done := start(b.flow.Browser)
			authURL := printedURL(t, b.out, authorizeURL)
			redirect, _ := redirectOf(t, authURL)
			require.Equal(t, strings.Trim(tt.host, "[]"), redirect.Hostname())
			requireListensOnly(t, tt.listen, redirect.Port())
			require.Contains(t, b.out.String(), "ssh -L "+redirect.Port()+":"+
				net.JoinHostPort(tt.listen, redirect.Port())+" ")

			// The browser follows the provider's redirect to the listener.
			loc := consent(t, authURL)
			hostPort := net.JoinHostPort(tt.listen, redirect.Port())
			r := send(t, http.MethodGet, "http://"+hostPort+loc.RequestURI(), loc.Host)
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.NoError(t, wait(t, done).err)
			require.NotEmpty(t, (<-b.saved).RefreshToken)
			requireNotListening(t, redirect.Port(), "")
		})
	}
}

// TestBrowserNoListenerForOtherHosts: a redirect URL that is not http on a
// loopback address or localhost gets no listener at all, not even on
// 127.0.0.1: the admin pastes the address instead.
func TestBrowserNoListenerForOtherHosts(t *testing.T) {
	t.Parallel()
	tests := []string{
		"http://0.0.0.0:%s/cb",
		"http://[::]:%s/cb",
		"http://192.0.2.10:%s/cb",
		"http://127.0.0.2:%s/cb",
		"http://[::ffff:127.0.0.1]:%s/cb",
		"http://localhost.example.com:%s/cb",
		"https://127.0.0.1:%s/cb",
		"https://localhost:%s/cb",
	}
	for _, tt := range tests {
		t.Run(tt, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			raw := strings.Replace(tt, "%s", port, 1)
			u, err := url.Parse(raw)
			require.NoError(t, err)
			require.False(t, authorize.IsLoopback(u))

			b := setup(t, oauthtest.Options{}, raw)
			in, keyboard := io.Pipe()
			b.flow.In = in
			done := start(b.flow.Browser)
			printedURL(t, b.out, authorizeURL)
			require.Contains(t, b.out.String(), "Paste the full address")
			requireNotListening(t, port, "")
			require.NoError(t, keyboard.Close())
			require.ErrorContains(t, wait(t, done).err, "no address was pasted")
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8400/cb", true},
		{"http://localhost:8400/", true},
		{"HTTP://Localhost/", true},
		{"http://[::1]:8400/cb", true},
		{"https://127.0.0.1/cb", false},
		{"http://0.0.0.0:8400/cb", false},
		{"http://[::]:8400/cb", false},
		{"http://127.0.0.1.example.com/cb", false},
		{"http://[::1%25lo]:8400/cb", false},
		{"https://helpdesk.example.com/oauth/callback", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		require.NoError(t, err)
		require.Equal(t, tt.want, authorize.IsLoopback(u), tt.url)
	}
}

// TestLoopbackRefusesForeignAnswers: answers without this sign-in's state
// (RFC 6749 section 10.12) are refused with 400 and never redeemed, but do
// not end the flow, or any program or web page could cancel the admin's
// sign-in; they are counted, the first is shown, a bounded number logged.
func TestLoopbackRefusesForeignAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	redirect, state := redirectOf(t, authURL)
	loc := consent(t, authURL)
	real := loc.Query()

	forged := []url.Values{
		{"error": {"access_denied"}, "error_description": {"AADSTS65004: forged"}},
		{"error": {"access_denied"}, "state": {"forged"}},
		{"code": real["code"]},
		{"code": real["code"], "state": {""}},
		{"code": real["code"], "state": {state[:len(state)-1]}},
		{"code": real["code"], "state": {state + "x"}},
		{"code": real["code"], "state": {strings.ToUpper(state)}},
	}
	for len(forged) < 15 {
		forged = append(forged, url.Values{"code": {"attacker-code"}, "state": {"guess" + strconv.Itoa(len(forged))}})
	}
	for _, q := range forged {
		r := send(t, http.MethodGet, withQuery(redirect, q), "")
		require.Equal(t, http.StatusBadRequest, r.status, "%v: %s", q, r.body)
		require.Contains(t, r.body, "state does not match")
		require.NotContains(t, r.body, real.Get("code"))
		requireNoStore(t, r)
	}
	require.Zero(t, codeRedemptions(b.srv), "a wrong state must not redeem the code")
	require.Empty(t, b.saved)
	require.Equal(t, 1, strings.Count(b.out.String(), "Refused a request with a wrong state"),
		"the first refusal is shown, the rest counted")
	require.Equal(t, 10, strings.Count(b.logs.String(), "refused a request to the loopback listener"),
		"warnings are logged, but not without bound")
	require.Contains(t, b.logs.String(), "level=WARN")

	// The flow still waits for its own answer, which works once.
	r := send(t, http.MethodGet, loc.String(), "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, wait(t, done).err)
	require.Equal(t, 1, codeRedemptions(b.srv))
	require.Contains(t, b.out.String(), "The listener refused 15 request(s)")
	require.Contains(t, b.logs.String(), "refused=15")
	requireNoSecrets(t, b, real.Get("code"))

	// Single use: the listener is closed, the answer cannot be replayed.
	_, err := net.DialTimeout("tcp", redirect.Host, time.Second)
	require.Error(t, err, "the listener must close after its one answer")
}

// TestLoopbackChecksHost: a web page can make its own host name resolve to
// 127.0.0.1 (DNS rebinding) and then read the listener's pages as its own
// origin; the listener answers only requests for the redirect URL's host.
func TestLoopbackChecksHost(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	redirect, _ := redirectOf(t, authURL)
	loc := consent(t, authURL)
	port, err := strconv.Atoi(redirect.Port())
	require.NoError(t, err)

	for _, host := range []string{
		"attacker.example:" + redirect.Port(),
		"attacker.example",
		"localhost:" + redirect.Port(), // the redirect URL says 127.0.0.1
		"127.0.0.1",
		"127.0.0.1:" + strconv.Itoa(port+1),
		"[::1]:" + redirect.Port(),
	} {
		r := send(t, http.MethodGet, loc.String(), host)
		require.Equal(t, http.StatusMisdirectedRequest, r.status, host)
		require.NotContains(t, r.body, "fetcher stored")
		requireNoStore(t, r)
	}
	require.Zero(t, codeRedemptions(b.srv), "a request for another host must not redeem the code")
	require.Contains(t, b.out.String(), "Refused a request for another host name (attacker.example:")

	r := send(t, http.MethodGet, loc.String(), "127.0.0.1:"+redirect.Port())
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, wait(t, done).err)
	require.Contains(t, b.out.String(), "The listener refused 6 request(s)")
}

// TestLoopbackOnlyGetOnItsPath: other paths get 404 (a browser asks for
// /favicon.ico), and only a GET may use the answer: a HEAD (a link
// preview) or a form POST must not use it up.
func TestLoopbackOnlyGetOnItsPath(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, loopback)
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	redirect, _ := redirectOf(t, authURL)
	loc := consent(t, authURL)

	tests := []struct {
		method, url string
		want        int
	}{
		{http.MethodGet, "http://" + redirect.Host + "/favicon.ico", http.StatusNotFound},
		{http.MethodGet, "http://" + redirect.Host + "/testApp?" + loc.RawQuery, http.StatusNotFound},
		{http.MethodGet, "http://" + redirect.Host + "/?" + loc.RawQuery, http.StatusNotFound},
		{http.MethodHead, loc.String(), http.StatusMethodNotAllowed},
		{http.MethodPost, loc.String(), http.StatusMethodNotAllowed},
		{http.MethodGet, redirect.String(), http.StatusBadRequest}, // no answer at all
	}
	for _, tt := range tests {
		r := send(t, tt.method, tt.url, "")
		require.Equal(t, tt.want, r.status, "%s %s", tt.method, tt.url)
		requireNoStore(t, r)
	}
	require.Zero(t, codeRedemptions(b.srv))
	require.NotContains(t, b.out.String(), "Refused", "none of these is a forged answer")

	r := send(t, http.MethodGet, loc.String(), "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, wait(t, done).err)
}

// TestLoopbackProviderError: an error the provider sends back with this
// sign-in's state ends the flow, and the admin reads it in plain words with
// what to do, in the terminal and in the browser, escaped.
func TestLoopbackProviderError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		q          url.Values
		wantCode   string
		wantErr    []string
		wantPage   []string
		notInPage  []string
		notInError []string
	}{
		{"user declined", url.Values{"error": {"access_denied"},
			"error_description": {"AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 1"}},
			"access_denied",
			[]string{"refused the sign-in: access_denied AADSTS65004: User declined", "accept the requested permissions"},
			[]string{"AADSTS65004: User declined to consent"}, nil, []string{"Trace ID"}},
		{"consent missing", url.Values{"error": {"consent_required"},
			"error_description": {"AADSTS65001: The user or administrator has not consented to use the application with ID 'app-1'."}},
			"consent_required",
			[]string{"AADSTS65001", "have an administrator grant it", "--admin-consent"},
			[]string{"AADSTS65001", "have an administrator grant it"}, nil, nil},
		{"conditional access", url.Values{"error": {"access_denied"},
			"error_description": {"AADSTS53003: Access has been blocked by Conditional Access policies."}},
			"access_denied", []string{"AADSTS53003", "Conditional Access policy blocked"}, nil, nil, nil},
		{"markup and control characters", url.Values{"error": {"<script>alert(1)</script>"},
			"error_description": {"<img src=x onerror=alert(1)>\x1b[2J oops"}},
			"<script>alert(1)</script>",
			[]string{"oops"},
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;"},
			[]string{"<script>", "<img"}, []string{"\x1b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{}, loopback)
			done := start(b.flow.Browser)
			redirect, state := redirectOf(t, printedURL(t, b.out, authorizeURL))
			tt.q.Set("state", state)
			r := send(t, http.MethodGet, withQuery(redirect, tt.q), "")
			require.Equal(t, http.StatusBadRequest, r.status)
			require.Contains(t, r.body, "Authorization failed")
			requireNoStore(t, r)
			for _, s := range tt.wantPage {
				require.Contains(t, r.body, s)
			}
			for _, s := range tt.notInPage {
				require.NotContains(t, r.body, s, "request input must be escaped")
			}

			o := wait(t, done)
			var ae *authorize.AnswerError
			require.ErrorAs(t, o.err, &ae)
			require.Equal(t, tt.wantCode, ae.Code)
			for _, s := range tt.wantErr {
				require.ErrorContains(t, o.err, s)
			}
			for _, s := range tt.notInError {
				require.NotContains(t, o.err.Error(), s)
			}
			require.Empty(t, b.saved)
			require.Zero(t, codeRedemptions(b.srv))
			requireNotListening(t, redirect.Port(), "")
		})
	}
}
