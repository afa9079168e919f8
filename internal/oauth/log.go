package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"
)

// log writes one line per token request. It names only the provider, the
// token host, the grant, the client-request-id, the outcome and the duration:
// never a token, secret, code or body.
func (c *Client) log(ctx context.Context, cfg Config, tokenURL, requestID string, start time.Time, err error) {
	if c.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	c.Logger.LogAttrs(ctx, level, "oauth token request",
		slog.String("provider", cfg.Provider),
		slog.String("token_host", hostOf(tokenURL)),
		slog.String("grant", cfg.grant()),
		slog.String("client_request_id", requestID),
		slog.String("outcome", outcome(err)),
		slog.Int64("duration_ms", c.now().Sub(start).Milliseconds()),
	)
}

// outcome is "ok", the error code of an [*Error] (e.g. "invalid_grant
// AADSTS70008" or "http 503"), "timeout" or "network error".
func outcome(err error) string {
	var e *Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return e.short()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "network error"
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
