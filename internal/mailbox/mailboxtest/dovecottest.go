package mailboxtest

import (
	"errors"
	"net/http/httptest"
	"os"
	"testing"
)

// RequireDovecotEnv names the variable CI sets so that a missing Dovecot
// fails the Dovecot tests instead of skipping them.
const RequireDovecotEnv = "FETCHER_REQUIRE_DOVECOT"

// DovecotForTest starts a Dovecot for t whose XOAUTH2 logins are checked
// with lookup (an introspection endpoint is started for it), stopped when
// t ends. Without Dovecot installed the test is skipped, unless
// RequireDovecotEnv is set (CI sets it), in which case it fails.
func DovecotForTest(t testing.TB, lookup func(token string) (user string, ok bool), passwords map[string]string) *Dovecot {
	t.Helper()
	introspect := httptest.NewServer(IntrospectionHandler(lookup))
	t.Cleanup(introspect.Close)
	d, err := StartDovecot(DovecotOptions{IntrospectionURL: introspect.URL, Passwords: passwords})
	if errors.Is(err, ErrNoDovecot) && os.Getenv(RequireDovecotEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
