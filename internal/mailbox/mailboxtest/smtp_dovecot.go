package mailboxtest

import (
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"text/template"
)

// DovecotSubmissionBinary is where Debian's dovecot-submissiond installs
// Dovecot's submission server.
const DovecotSubmissionBinary = "/usr/lib/dovecot/submission"

// errNoSubmission is StartDovecot's answer to SubmissionRelay without
// dovecot-submissiond; errors.Is(err, ErrNoDovecot) holds, so tests skip
// alike.
var errNoSubmission = fmt.Errorf("dovecot's submission server is not installed (apt-get install dovecot-submissiond): %w", ErrNoDovecot)

// dovecotSubmissionConf is the part of dovecot.conf for SubmissionRelay:
// a submission listener taking STARTTLS (RFC 3207) and AUTH only after it
// (disable_plaintext_auth), relaying to the test's SMTP server.
var _ = template.Must(dovecotConf.New("submission").Funcs(template.FuncMap{
	"hostOf": func(addr string) string { h, _, _ := net.SplitHostPort(addr); return h },
	"portOf": func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p },
}).Parse(`submission_relay_host = {{hostOf .Relay}}
submission_relay_port = {{portOf .Relay}}
submission_relay_trusted = yes
submission_relay_ssl = no
service submission-login {
  inet_listener submission {
    port = {{.Ports.submission}}
  }
}`))

// submissionInstalled reports whether dovecot-submissiond is installed.
func submissionInstalled() bool {
	_, err := os.Stat(DovecotSubmissionBinary)
	return err == nil
}

// DovecotSubmissionForTest starts, for t, an SMTP relay (an SMTPServer
// with relayOpts, made a Relay in clear) and a Dovecot whose submission
// server relays to it, with XOAUTH2 logins checked with lookup and plain
// ones against passwords; both stop when t ends. Without Dovecot's
// submission server the test is skipped, unless RequireDovecotEnv is set,
// in which case it fails.
func DovecotSubmissionForTest(t testing.TB, lookup func(token string) (user string, ok bool), passwords map[string]string,
	relayOpts SMTPOptions) (*Dovecot, *SMTPServer) {
	t.Helper()
	relayOpts.Security, relayOpts.Relay = "plain", true
	relay, err := StartSMTP(relayOpts)
	if err != nil {
		t.Fatalf("start SMTP relay: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	introspect := httptest.NewServer(IntrospectionHandler(lookup))
	t.Cleanup(introspect.Close)
	d, err := StartDovecot(DovecotOptions{IntrospectionURL: introspect.URL, Passwords: passwords, SubmissionRelay: relay.Addr})
	if errors.Is(err, ErrNoDovecot) && os.Getenv(RequireDovecotEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, relay
}
