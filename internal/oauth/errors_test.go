package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth"
)

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *oauth.Error
		want string
	}{
		{"refresh refused", &oauth.Error{Status: 400, Code: "invalid_grant", AADSTS: 70008,
			Description: "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
			Advice:      "run fetcher authorize to sign in again", Reauth: true,
			TraceID: "t-1", CorrelationID: "c-1", ClientRequestID: "c-1"},
			"token endpoint refused the refresh token: invalid_grant AADSTS70008: The provided " +
				"authorization code or refresh token has expired due to inactivity. Do this: run " +
				"fetcher authorize to sign in again [trace_id=t-1, correlation_id=c-1, client_request_id=c-1]"},
		{"client credentials, code only in error_codes", &oauth.Error{Status: 401, Code: "invalid_client",
			AADSTS: 7000215, Description: "Invalid client secret provided", Grant: oauth.GrantClientCredentials},
			"token endpoint refused the client credentials: invalid_client AADSTS7000215: Invalid client secret provided."},
		{"throttled", &oauth.Error{Status: 429, RetryAfter: 30 * time.Second, Advice: "nothing"},
			"token endpoint throttled the request (HTTP 429): HTTP 429 Too Many Requests. Do this: nothing (the provider asked to wait 30s)"},
		{"proxy 502", &oauth.Error{Status: 502},
			"token endpoint failed (HTTP 502): HTTP 502 Bad Gateway."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("mailbox 7: %w", &oauth.Error{Status: 400, Code: "invalid_grant", AADSTS: 70008})
	require.ErrorIs(t, err, &oauth.Error{AADSTS: 70008})
	require.ErrorIs(t, err, &oauth.Error{Code: "invalid_grant"})
	require.NotErrorIs(t, err, &oauth.Error{AADSTS: 700082})
	require.NotErrorIs(t, err, &oauth.Error{Code: "invalid_grant", Status: 401})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantReauth    bool
		wantTemporary bool
	}{
		{"nil", nil, false, false},
		{"reauth error", &oauth.Error{Status: 400, Reauth: true}, true, false},
		{"wrapped reauth error", fmt.Errorf("refresh: %w", &oauth.Error{Reauth: true}), true, false},
		{"503", &oauth.Error{Status: 503}, false, true},
		{"config error", &oauth.ConfigError{Column: "client_id"}, true, false},
		{"joined config errors", errors.Join(&oauth.ConfigError{}, &oauth.ConfigError{}), true, false},
		{"net.OpError", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false, true},
		{"url.Error", &url.Error{Op: "Post", URL: "https://x", Err: io.ErrUnexpectedEOF}, false, true},
		{"EOF", io.EOF, false, true},
		{"deadline", context.DeadlineExceeded, false, true},
		{"unknown", errors.New("something odd"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantReauth, oauth.NeedsReauth(tt.err), "NeedsReauth()")
			require.Equal(t, tt.wantTemporary, oauth.IsTemporary(tt.err), "IsTemporary()")
		})
	}
}
