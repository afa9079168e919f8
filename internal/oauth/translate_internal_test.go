package oauth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestFromRetrieve(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	c := &Client{Now: func() time.Time { return now }}
	tests := []struct {
		name string
		re   *oauth2.RetrieveError
		want Error
	}{
		{"microsoft body", &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: 400, Header: http.Header{}},
			Body: []byte(`{"error":"invalid_grant","error_description":"AADSTS70008: Expired.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: x",` +
				`"error_codes":[70008],"trace_id":"t","correlation_id":"c"}`),
			ErrorCode: "invalid_grant", ErrorDescription: "AADSTS70008: Expired.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: x"},
			Error{Status: 400, Code: "invalid_grant", Description: "AADSTS70008: Expired.", AADSTS: 70008,
				TraceID: "t", CorrelationID: "c", ClientRequestID: "id", Reauth: true, Advice: doAuthorize, Grant: GrantRefreshToken}},
		{"AADSTS only in description", &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: 401, Header: http.Header{}},
			Body:     []byte(`{"error":"invalid_client","error_description":"AADSTS7000222: Secret expired."}`)},
			Error{Status: 401, Code: "invalid_client", Description: "AADSTS7000222: Secret expired.", AADSTS: 7000222,
				ClientRequestID: "id", Reauth: true, Advice: mustAdvice(7000222), Grant: GrantRefreshToken}},
		{"html from a proxy, Retry-After date", &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"Tue, 04 Mar 2025 12:02:00 GMT"}}},
			Body:     []byte(`<html>down</html>`)},
			Error{Status: 503, ClientRequestID: "id", RetryAfter: 2 * time.Minute, Advice: doRetry, Grant: GrantRefreshToken}},
		{"secret echoed in description", &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: 400, Header: http.Header{}},
			Body:     []byte(`{"error":"invalid_request","error_description":"bad value topsecret123 for client_secret"}`)},
			Error{Status: 400, Code: "invalid_request", Description: "bad value [redacted] for client_secret",
				ClientRequestID: "id", Reauth: true, Advice: codeAdvice("invalid_request", "").text, Grant: GrantRefreshToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := c.fromRetrieve(tt.re, GrantRefreshToken, "id", []string{"topsecret123"})
			require.Equal(t, tt.want, *got)
		})
	}
}

func mustAdvice(code int) string {
	a, _ := aadstsAdvice(code)
	return a.text
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"seconds on 429", 429, "30", 30 * time.Second},
		{"seconds on 503", 503, " 120 ", 2 * time.Minute},
		{"http date", 503, "Tue, 04 Mar 2025 12:00:10 GMT", 10 * time.Second},
		{"date in the past", 503, "Tue, 04 Mar 2025 11:00:00 GMT", 0},
		{"negative", 429, "-5", 0},
		{"garbage", 429, "soon", 0},
		{"ignored on 400", 400, "30", 0},
		{"absent", 503, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.header != "" {
				r.Header.Set("Retry-After", tt.header)
			}
			require.Equal(t, tt.want, retryAfter(r, now))
		})
	}
}

func TestAADSTSFromText(t *testing.T) {
	t.Parallel()
	require.Equal(t, 70008, aadsts(nil, "AADSTS70008: x"))
	require.Equal(t, 50173, aadsts([]int{50173, 1}, "AADSTS70008: x"))
	require.Equal(t, 0, aadsts(nil, "Token has been expired or revoked."))
	require.Equal(t, 0, aadsts(nil, "AADSTS"))
}

func TestFirstLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a b", firstLine(" a b \r\nTrace ID: x"))
	long := firstLine(strings.Repeat("é", 400))
	require.LessOrEqual(t, len(long), maxDescription+3)
	require.True(t, strings.HasSuffix(long, "..."))
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://id.example/token?redacted", redactURL("https://user:pw@id.example/token?key=k#f"))
	require.Equal(t, "https://id.example/token", redactURL("https://id.example/token"))
}

func TestExpiresIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  any
		want time.Duration
	}{
		{map[string]any{"expires_in": float64(3599)}, 3599 * time.Second},
		{map[string]any{"expires_in": "3600"}, time.Hour},
		{map[string]any{}, 0},
	}
	for _, tt := range tests {
		tok := (&oauth2.Token{AccessToken: "x"}).WithExtra(tt.raw)
		require.Equal(t, tt.want, expiresIn(tok))
	}
}
