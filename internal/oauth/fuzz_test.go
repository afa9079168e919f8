package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Known secrets for FuzzTokenError, with the characters that form encoding
// changes ('+', '/', '=', '*'), as real refresh tokens have.
const (
	fuzzClientSecret = "Xy8Q~s3cr3tVALUE.abcdefghijklmnopqrstu"
	fuzzRefreshToken = "0.AXoA-fuzzRefresh_Token.abc*DEF+ghi/jkl=mno!pqr$stu"
	fuzzCode         = "1.AcodeFromTheBrowser-0123456789*abc"
	fuzzVerifier     = "pkce-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
)

// fuzzSecretForms is every secret as it may come back: raw, and
// percent-encoded as it was in the request's form body.
var fuzzSecretForms = func() []string {
	var out []string
	for _, s := range []string{fuzzClientSecret, fuzzRefreshToken, fuzzCode, fuzzVerifier} {
		out = append(out, s, url.QueryEscape(s))
	}
	return out
}()

// fuzzMarkers lets the fuzzer make the token endpoint echo what it got.
var fuzzMarkers = strings.NewReplacer(
	"$SECRET", fuzzClientSecret, "$QSECRET", url.QueryEscape(fuzzClientSecret),
	"$RT", fuzzRefreshToken, "$QRT", url.QueryEscape(fuzzRefreshToken),
	"$CODE", fuzzCode, "$VERIFIER", fuzzVerifier,
)

var fuzzNow = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

// fuzzFlows are the requests FuzzTokenError makes: the worker's two grants
// for each kind of provider, and fetcher authorize's code redemption.
var fuzzFlows = []struct {
	name  string
	cfg   Config
	grant string
}{
	{"microsoft refresh", Config{Provider: Microsoft, TenantID: "contoso.example", ClientID: "11111111-2222-3333-4444-555555555555",
		ClientSecret: fuzzClientSecret, Protocol: "imap"}, GrantRefreshToken},
	{"microsoft client credentials", Config{Provider: Microsoft, TenantID: "contoso.example", Grant: GrantClientCredentials,
		ClientID: "11111111-2222-3333-4444-555555555555", ClientSecret: fuzzClientSecret, Protocol: "imap"}, GrantClientCredentials},
	{"google refresh", Config{Provider: Google, ClientID: "123-abc.apps.googleusercontent.com",
		ClientSecret: fuzzClientSecret, Protocol: "imap"}, GrantRefreshToken},
	{"custom refresh", Config{Provider: Custom, TokenURL: "https://sso.example.com/token?tenant=1", ClientID: "fetcher",
		ClientSecret: fuzzClientSecret, Scopes: []string{"mail"}}, GrantRefreshToken},
	{"authorization code", Config{Provider: Microsoft, TenantID: "contoso.example", ClientID: "11111111-2222-3333-4444-555555555555",
		ClientSecret: fuzzClientSecret, Protocol: "imap", RedirectURL: "http://localhost:8400/"}, GrantAuthorizationCode},
}

// FuzzTokenError answers a token request with the fuzzed status,
// Content-Type, Retry-After and body, which may echo the secrets (see
// fuzzMarkers), and checks what the Client makes of it: no panic; no
// secret in the error's text, in any format, or in the log; and an [*Error]
// that holds together: the status, the AADSTS code from error_codes when
// there is one, advice always, no reauth for provider trouble, a
// Retry-After that is never negative and never shorter than a positive
// delay-seconds asks.
func FuzzTokenError(f *testing.F) {
	add := func(status uint16, contentType, retryAfter, body string) {
		for flow := range fuzzFlows {
			f.Add(status, contentType, retryAfter, []byte(body), uint8(flow))
		}
	}
	// Microsoft Entra ID.
	add(400, "application/json; charset=utf-8", "", `{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. The token was issued on 2024-11-01T10:00:00.0000000Z and was inactive for 90.00:00:00.\r\nTrace ID: 2c0a4b5e-1f2d-4c3b-9a8e-0d1c2b3a4f5e\r\nCorrelation ID: 7e6d5c4b-3a2f-4e1d-8c9b-0a1f2e3d4c5b\r\nTimestamp: 2025-03-04 12:00:00Z","error_codes":[70008],"timestamp":"2025-03-04 12:00:00Z","trace_id":"2c0a4b5e-1f2d-4c3b-9a8e-0d1c2b3a4f5e","correlation_id":"7e6d5c4b-3a2f-4e1d-8c9b-0a1f2e3d4c5b","error_uri":"https://login.microsoftonline.com/error?code=70008"}`)
	add(401, "application/json", "", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '11111111-2222-3333-4444-555555555555'.","error_codes":[7000215]}`)
	add(400, "application/json", "", `{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain the following parameter: 'scope'.","error_codes":[900144]}`)
	add(429, "application/json", "30", `{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server terminated an operation because it encountered a client request loop.","error_codes":[50196]}`)
	add(503, "text/html", "Tue, 04 Mar 2025 12:02:00 GMT", `<html><body><h1>Service Unavailable</h1></body></html>`)
	// Google.
	add(400, "application/json; charset=utf-8", "", `{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`)
	add(401, "application/json", "", `{"error": "unauthorized_client", "error_description": "Unauthorized"}`)
	// Success, and odd servers: a form-encoded error, an error in a 200, a
	// huge Retry-After, bodies that echo the request.
	add(200, "application/json", "", `{"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All","expires_in":3599,"access_token":"eyJ0eXAi.x.y","refresh_token":"0.AXoA-new"}`)
	add(400, "application/x-www-form-urlencoded", "", "error=invalid_grant&error_description=bad+refresh+token+$QRT")
	add(200, "text/plain", "", "error=server_error")
	add(503, "application/json", "9300000000", `{"error":"server_error"}`)
	add(429, "application/json", "18446744074", `{"error":"temporarily_unavailable"}`)
	add(503, "text/plain", "99999999999999999999", "")
	add(400, "application/json", "", `{"error":"invalid_request","error_description":"bad client_secret $SECRET for refresh_token $RT","trace_id":"$RT","correlation_id":"$SECRET"}`)
	add(400, "application/json", "", `{"error":"$SECRET","error_description":"AADSTS99999999999999999999: x","error_codes":[-1]}`)
	add(400, "text/plain", "", "error=invalid_request&error_description=echo+of+$REQ")
	add(502, "", "", "$REQ")
	add(400, "application/json", "", `{"error":"invalid_request","error_description":"request was: $REQ"}`)
	f.Fuzz(func(t *testing.T, status uint16, contentType, retryAfter string, body []byte, flow uint8) {
		code := int(status)
		if code < 100 || code > 599 {
			code = 100 + code%500
		}
		fl := fuzzFlows[int(flow)%len(fuzzFlows)]
		var request string
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			request = string(b)
			h := http.Header{}
			h.Set("Content-Type", contentType)
			h.Set("Retry-After", retryAfter)
			answer := strings.ReplaceAll(fuzzMarkers.Replace(string(body)), "$REQ", request)
			return &http.Response{StatusCode: code, Header: h, Request: req,
				Body: io.NopCloser(strings.NewReader(answer))}, nil
		})
		var logs bytes.Buffer
		c := &Client{HTTPClient: &http.Client{Transport: rt}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Now: func() time.Time { return fuzzNow }}
		var err error
		if fl.grant == GrantAuthorizationCode {
			err = c.Request(context.Background(), fl.cfg, fl.grant, func(ctx context.Context) error {
				ep, err := fl.cfg.Endpoint()
				if err != nil {
					return err
				}
				oc := oauth2.Config{ClientID: fl.cfg.ClientID, ClientSecret: fl.cfg.ClientSecret, Endpoint: ep,
					RedirectURL: fl.cfg.RedirectURL, Scopes: fl.cfg.EffectiveScopes()}
				_, err = oc.Exchange(ctx, fuzzCode, oauth2.VerifierOption(fuzzVerifier))
				return err
			}, fuzzCode, fuzzVerifier)
		} else {
			_, err = c.Token(context.Background(), fl.cfg, fuzzRefreshToken)
		}
		if !strings.Contains(request, url.QueryEscape(fuzzClientSecret)) {
			t.Fatalf("%s: the request did not carry the client secret: %q", fl.name, request)
		}

		texts := []string{logs.String()}
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err))
		}
		var e *Error
		if errors.As(err, &e) {
			texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", *e, *e, *e, e.short()))
		}
		// Only what the request carried: the code flow sends no refresh
		// token, so its refresh token in an answer is no echo.
		var sent []string
		for _, secret := range fuzzSecretForms {
			if strings.Contains(request, url.QueryEscape(secret)) {
				sent = append(sent, secret)
			}
		}
		for _, text := range texts {
			for _, secret := range sent {
				if strings.Contains(text, secret) {
					t.Fatalf("%s: secret %.12s... shows in %q", fl.name, secret, text)
				}
			}
		}
		if e != nil {
			requireTokenError(t, e, fl.grant, code, retryAfter, []byte(strings.ReplaceAll(fuzzMarkers.Replace(string(body)), "$REQ", request)))
		}
	})
}

// requireTokenError checks that e holds together with the response it came
// from.
func requireTokenError(t *testing.T, e *Error, grant string, status int, retryAfter string, body []byte) {
	t.Helper()
	if e.Status != status {
		t.Fatalf("Status %d from HTTP %d", e.Status, status)
	}
	if e.Advice == "" {
		t.Fatalf("no advice in %+v", e)
	}
	if (status == http.StatusTooManyRequests || status >= 500) && e.Reauth {
		t.Fatalf("HTTP %d asks for a person: %+v", status, e)
	}
	if NeedsReauth(e) != e.Reauth || IsTemporary(e) == e.Reauth {
		t.Fatalf("NeedsReauth/IsTemporary disagree with Reauth %v", e.Reauth)
	}
	if e.Grant != grant {
		t.Fatalf("Grant %q, want %q", e.Grant, grant)
	}
	var codes struct {
		ErrorCodes []int `json:"error_codes"`
	}
	_ = json.Unmarshal(body, &codes)
	if len(codes.ErrorCodes) > 0 && e.AADSTS != codes.ErrorCodes[0] {
		t.Fatalf("AADSTS %d, error_codes %v", e.AADSTS, codes.ErrorCodes)
	}
	if e.RetryAfter < 0 {
		t.Fatalf("RetryAfter %v from %q", e.RetryAfter, retryAfter)
	}
	secs, err := strconv.Atoi(strings.TrimSpace(retryAfter))
	if (err == nil || errors.Is(err, strconv.ErrRange)) && secs > 0 && (status == http.StatusTooManyRequests || status >= 500) &&
		e.RetryAfter < min(time.Duration(secs), 1<<30)*time.Second {
		t.Fatalf("Retry-After %q gave a wait of %v", retryAfter, e.RetryAfter)
	}
	if len(e.Description) > maxDescription+len("...") {
		t.Fatalf("description of %d bytes", len(e.Description))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
