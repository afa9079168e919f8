package oauthtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/oauth/oauthtest"
)

const (
	clientID = "app-1"
	secret   = "app-1-secret-value"
	tenant   = "contoso.example"
	user     = "support@contoso.example"
	imap     = "https://outlook.office.com/IMAP.AccessAsUser.All"
)

type testBundle struct {
	srv   *oauthtest.Server
	clock *oauthtest.Clock
}

func setup(t *testing.T, opts oauthtest.Options) *testBundle {
	t.Helper()
	clock := oauthtest.NewClock(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	opts.Now = clock.Now
	srv := oauthtest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddClient(clientID, secret)
	return &testBundle{srv: srv, clock: clock}
}

// reply is a token endpoint answer, decoded loosely.
type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// aadsts returns error_codes[0], or 0.
func (r reply) aadsts() int {
	codes, _ := r.body["error_codes"].([]any)
	if len(codes) == 0 {
		return 0
	}
	f, _ := codes[0].(float64)
	return int(f)
}

// post sends form to the token endpoint of tenant.
func (b *testBundle) post(t *testing.T, tenant string, form url.Values) reply {
	t.Helper()
	r, err := b.postErr(tenant, form)
	require.NoError(t, err)
	return r
}

// postErr is post for goroutines, which must not call t.FailNow.
func (b *testBundle) postErr(tenant string, form url.Values) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, b.srv.TokenURL(tenant), strings.NewReader(form.Encode()))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("client-request-id", "11111111-2222-4333-8444-555555555555")
	return doErr(req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	r, err := doErr(req)
	require.NoError(t, err)
	return r
}

func doErr(req *http.Request) (reply, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	_ = json.NewDecoder(resp.Body).Decode(&r.body)
	return r, nil
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {clientID}, "client_secret": {secret}, "scope": {"offline_access " + imap}}
}
