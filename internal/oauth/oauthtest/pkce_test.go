package oauthtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

// TestAuthorizationCodePKCE: the server redeems a code only with the
// verifier whose S256 challenge the authorize request carried (RFC 7636
// section 4.6), and only a verifier of 43 to 128 unreserved characters
// (section 4.1). A failed check leaves the code usable, as at Microsoft.
func TestAuthorizationCodePKCE(t *testing.T) {
	t.Parallel()
	s256 := func(v string) string {
		sum := sha256.Sum256([]byte(v))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	good := oauth2.GenerateVerifier()
	tests := []struct {
		name     string
		verifier string // the one the challenge is made of
		sent     string // the one sent with the code; "" sends none
		wantOK   bool
	}{
		{"matching verifier", good, good, true},
		{"another well-formed verifier", good, oauth2.GenerateVerifier(), false},
		{"no verifier", good, "", false},
		{"the challenge as verifier", good, s256(good), false},
		{"43 characters, matching", strings.Repeat("a", 43), strings.Repeat("a", 43), true},
		{"128 characters, matching", strings.Repeat("~", 128), strings.Repeat("~", 128), true},
		{"42 characters, matching", strings.Repeat("a", 42), strings.Repeat("a", 42), false},
		{"129 characters, matching", strings.Repeat("a", 129), strings.Repeat("a", 129), false},
		{"reserved character, matching", strings.Repeat("a", 42) + "+", strings.Repeat("a", 42) + "+", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, oauthtest.Options{})
			cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: endpoint(b.srv),
				RedirectURL: "http://127.0.0.1/testApp/", Scopes: []string{"offline_access", imap}}
			q := authorize(t, cfg.AuthCodeURL("st4te",
				oauth2.SetAuthURLParam("code_challenge", s256(tt.verifier)),
				oauth2.SetAuthURLParam("code_challenge_method", "S256")))
			var opts []oauth2.AuthCodeOption
			if tt.sent != "" {
				opts = append(opts, oauth2.VerifierOption(tt.sent))
			}
			ctx := context.Background()
			_, err := cfg.Exchange(ctx, q.Get("code"), opts...)
			if tt.wantOK {
				require.NoError(t, err)
				return
			}
			requireAADSTS(t, err, 501481)
			if tt.verifier == good {
				_, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(good))
				require.NoError(t, err, "a failed verifier check must not use the code up")
			}
		})
	}
}
