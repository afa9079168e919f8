package oauth_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestNeedsRefresh(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		tok    oauth.Token
		before time.Duration
		want   bool
	}{
		{"empty access token", oauth.Token{Expiry: now.Add(time.Hour)}, 0, true},
		{"zero expiry", oauth.Token{AccessToken: "at"}, 0, true},
		{"fresh", oauth.Token{AccessToken: "at", Expiry: now.Add(time.Hour)}, 5 * time.Minute, false},
		{"just outside the window", oauth.Token{AccessToken: "at", Expiry: now.Add(5*time.Minute + time.Nanosecond)}, 5 * time.Minute, false},
		{"exactly at the window", oauth.Token{AccessToken: "at", Expiry: now.Add(5 * time.Minute)}, 5 * time.Minute, true},
		{"inside the window", oauth.Token{AccessToken: "at", Expiry: now.Add(time.Minute)}, 5 * time.Minute, true},
		{"expired", oauth.Token{AccessToken: "at", Expiry: now.Add(-time.Second)}, 0, true},
		{"expires now, no window", oauth.Token{AccessToken: "at", Expiry: now}, 0, true},
		{"one ns left, no window", oauth.Token{AccessToken: "at", Expiry: now.Add(time.Nanosecond)}, 0, false},
		{"negative window counts as zero", oauth.Token{AccessToken: "at", Expiry: now.Add(time.Second)}, -time.Hour, false},
		{"window longer than lifetime", oauth.Token{AccessToken: "at", Expiry: now.Add(time.Hour)}, 2 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.tok.NeedsRefresh(now, tt.before)
			require.Equal(t, tt.want, got, "NeedsRefresh() = %v, want %v", got, tt.want)
		})
	}
}

func TestTokenStringHidesTokens(t *testing.T) {
	t.Parallel()
	tok := oauth.Token{AccessToken: "access-token-value", RefreshToken: "refresh-token-value"}
	s := tok.String() + tok.GoString() + tok.LogValue().String()
	require.NotContains(t, s, "access-token-value")
	require.NotContains(t, s, "refresh-token-value")
}
