package authorize_test

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// pasteSetup runs the paste flow for a web redirect URL and returns the
// printed address and the admin's keyboard.
func pasteSetup(t *testing.T) (*testBundle, string, *io.PipeWriter, <-chan outcome) {
	t.Helper()
	b := setup(t, oauthtest.Options{}, webApp)
	in, keyboard := io.Pipe()
	t.Cleanup(func() { keyboard.Close() })
	b.flow.In = in
	done := start(b.flow.Browser)
	authURL := printedURL(t, b.out, authorizeURL)
	require.Contains(t, b.out.String(), "Paste the full address")
	return b, authURL, keyboard, done
}

func TestBrowserPaste(t *testing.T) {
	t.Parallel()
	b, authURL, keyboard, done := pasteSetup(t)
	require.Equal(t, webApp, mustQuery(t, authURL).Get("redirect_uri"))
	loc := consent(t, authURL)
	require.Equal(t, "helpdesk.example.com", loc.Host)

	_, err := io.WriteString(keyboard, "  "+loc.String()+"\r\n")
	require.NoError(t, err)
	o := wait(t, done)
	require.NoError(t, o.err)
	saved := <-b.saved
	require.NotEmpty(t, saved.RefreshToken)
	requireNoSecrets(t, b, loc.Query().Get("code"), saved.RefreshToken, saved.AccessToken)
}

func TestBrowserPasteRejectsWrongState(t *testing.T) {
	t.Parallel()
	b, authURL, keyboard, done := pasteSetup(t)
	loc := consent(t, authURL)
	q := loc.Query()
	q.Set("state", "12345")
	loc.RawQuery = q.Encode()

	_, err := io.WriteString(keyboard, loc.String()+"\n")
	require.NoError(t, err)
	o := wait(t, done)
	require.ErrorIs(t, o.err, authorize.ErrStateMismatch)
	require.Zero(t, codeRedemptions(b.srv), "a wrong state must not redeem the code")
	require.Empty(t, b.saved)
}

func TestBrowserPasteMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		paste func(authURL string) string
		want  string
	}{
		{"the address opened, not the one landed on", func(u string) string { return u }, "carries no code"},
		{"not an address", func(string) string { return "1.AXoA-just-the-code" }, "not an address"},
		{"empty line", func(string) string { return "" }, "no address was pasted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, authURL, keyboard, done := pasteSetup(t)
			_, err := io.WriteString(keyboard, tt.paste(authURL)+"\n")
			require.NoError(t, err)
			o := wait(t, done)
			require.ErrorContains(t, o.err, tt.want)
			require.NotContains(t, o.err.Error(), "AXoA", "the error must not echo what was pasted")
			require.Zero(t, codeRedemptions(b.srv))
		})
	}
}

func TestBrowserPasteEOF(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, webApp)
	b.flow.In = strings.NewReader("")
	_, err := b.flow.Browser(t.Context())
	require.ErrorContains(t, err, "no address was pasted")
}

func TestBrowserGoogleAsksForOffline(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, webApp)
	// Google's endpoints are fixed: only the printed address is checked.
	b.flow.Config.Provider = "google"
	b.flow.Config.TenantID, b.flow.Config.AuthorityURL = "", ""
	b.flow.In = strings.NewReader("")
	_, err := b.flow.Browser(t.Context())
	require.Error(t, err)
	printed := regexp.MustCompile(`https://accounts\.google\.com/\S+`).FindString(b.out.String())
	q := mustQuery(t, printed)
	require.Equal(t, "offline", q.Get("access_type"))
	require.Equal(t, "consent", q.Get("prompt"))
	require.Equal(t, "https://mail.google.com/", q.Get("scope"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, user, q.Get("login_hint"))
	require.False(t, q.Has("response_mode"))
}
