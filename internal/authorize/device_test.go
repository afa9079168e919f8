package authorize_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/authorize"
	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

var userCode = regexp.MustCompile(`enter the code (\w+)`)

func TestDevice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		public bool // a desktop app without a secret, as Microsoft's device flow usually has
	}{
		{"public client", true},
		{"confidential client", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{}, "")
			if tt.public {
				b.srv.AddClient("desktop", "")
				b.flow.Config.ClientID, b.flow.Config.ClientSecret = "desktop", ""
			}
			done := start(b.flow.Device)
			code := printedURL(t, b.out, userCode)
			code = userCode.FindStringSubmatch(code)[1]
			require.Contains(t, b.out.String(), b.srv.URL()+"/devicelogin")
			require.Contains(t, b.out.String(), "sign in as "+user)
			require.True(t, b.srv.ApproveDevice(code, user))

			o := wait(t, done)
			require.NoError(t, o.err)
			saved := <-b.saved
			require.NotEmpty(t, saved.RefreshToken)
			got, ok := b.srv.AccessTokenUser(saved.AccessToken)
			require.True(t, ok)
			require.Equal(t, user, got)
			requireNoSecrets(t, b, saved.RefreshToken, saved.AccessToken)
			require.Contains(t, b.logs.String(), "grant=urn:ietf:params:oauth:grant-type:device_code")
		})
	}
}

func TestDeviceTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, "")
	b.flow.Timeout = 1500 * time.Millisecond
	_, err := b.flow.Device(t.Context())
	require.ErrorIs(t, err, authorize.ErrTimeout)
	require.Empty(t, b.saved)
}

func TestDeviceNotForGmail(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, "")
	b.flow.Config.Provider, b.flow.Config.TenantID, b.flow.Config.AuthorityURL = "google", "", ""
	_, err := b.flow.Device(t.Context())
	require.ErrorContains(t, err, "does not work for Gmail")
}

func TestDeviceNotWithCertificate(t *testing.T) {
	t.Parallel()
	b := setup(t, oauthtest.Options{}, "")
	b.flow.Config.ClientCertificate, b.flow.Config.ClientPrivateKey = "-----BEGIN CERTIFICATE-----", "-----BEGIN PRIVATE KEY-----"
	_, err := b.flow.Device(t.Context())
	require.ErrorContains(t, err, "public clients")
	require.Empty(t, b.saved)
}
