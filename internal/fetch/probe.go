package fetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/store"
)

// Probe steps, in order.
const (
	ProbeSettings = "settings"
	ProbeToken    = "token"
	ProbeLogin    = "log in"
	ProbeFolder   = "folder"
	ProbeSMTP     = "smtp"
)

// ProbeStep is one step of a Probe: passed (Err nil, Skipped ""), failed,
// or skipped.
type ProbeStep struct {
	Name string
	// Detail says what a passed step found.
	Detail string
	// Err is why the step failed; Message says it in the words a pass
	// stores (last_error, or smtp_last_error for ProbeSMTP), and Status
	// is the status a pass would record ("" for ProbeSMTP: sending never
	// changes it).
	Err     error
	Message string
	Status  string
	// Skipped says why the step did not run.
	Skipped  string
	Duration time.Duration
}

// OK reports whether the step ran and passed.
func (s ProbeStep) OK() bool { return s.Err == nil && s.Skipped == "" }

// ProbeOptions tune a Probe.
type ProbeOptions struct {
	// Refresh gets a new access token even while the cached one is good,
	// which proves the refresh token (or the client credential) works.
	Refresh bool
	// Step, when set, is called as each step ends, for live output.
	Step func(ProbeStep)
}

// ProbeResult is what a Probe found.
type ProbeResult struct {
	Steps []ProbeStep
	// Messages is how many messages the folder (IMAP) or the maildrop
	// (POP3) holds; -1 when the listing did not run.
	Messages int
	// Warning is what a pass would store in mailboxes.warning (a secret
	// or certificate about to expire …); the probe does not store it.
	Warning string
}

// OK reports whether no step failed.
func (r ProbeResult) OK() bool {
	for _, s := range r.Steps {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// Probe checks a mailbox the way a pass would use it, fetching nothing:
// it validates the row, gets an access token (refreshing it, and storing a
// rotated refresh token, exactly as a pass does), logs in, lists the
// folder (IMAP) or the maildrop (POP3) to count its messages, and, when
// the mailbox sends, logs in to its SMTP server and leaves without
// sending. Nothing changes on the servers, and nothing is written to the
// database but the tokens (and, for POP3, the lease it holds while logged
// in): no ticket, no fetch_runs row, no status, last_error or warning.
// mb must carry its secrets (Mailboxes.Get).
func (r *Runner) Probe(ctx context.Context, mb store.Mailbox, opts ProbeOptions) ProbeResult {
	p := &probe{r: r, mb: mb, opts: opts, res: ProbeResult{Messages: -1}}
	p.res.Warning = warning(mb, r.now())
	if p.res.Warning == "" {
		p.res.Warning = r.sendingWarning(ctx, r.mailboxLog(mb), mb)
	}
	settings := p.run(ProbeSettings, func() (string, error) {
		if err := Validate(mb); err != nil {
			return "", err
		}
		return describeServer(mb), nil
	})
	// A step runs when the steps it needs passed: SMTP needs the token but
	// not the folder.
	const earlier = "an earlier step failed"
	token := false
	if settings {
		token = p.run(ProbeToken, func() (string, error) { return p.token(ctx) })
	} else {
		p.skip(ProbeToken, earlier)
	}
	var sess mailbox.Session
	login, busy, release := false, false, func() {}
	if token {
		var err error
		if release, err = p.lockMaildrop(ctx); err != nil {
			p.add(ProbeStep{Name: ProbeLogin, Err: err, Message: err.Error()})
			busy = true
		}
		defer release()
	}
	if token && !busy {
		login = p.run(ProbeLogin, func() (string, error) {
			var err error
			if sess, err = r.open(ctx, mb, false); err != nil {
				return "", err
			}
			return "logged in as " + mb.Username + " (" + mechanism(mb) + ")", nil
		})
	} else if !busy {
		p.skip(ProbeLogin, earlier)
	}
	if login {
		p.run(ProbeFolder, func() (string, error) {
			list, err := sess.List(ctx, mailbox.Cursor{})
			if err != nil {
				_ = sess.Abort()
				return "", err
			}
			_ = sess.Close() // nothing was marked: LOGOUT or QUIT changes nothing
			p.res.Messages = len(list.Messages)
			if mb.Protocol == "pop3" {
				return fmt.Sprintf("maildrop: %s", messages(len(list.Messages))), nil
			}
			return fmt.Sprintf("folder %q: %s", mb.Folder, messages(len(list.Messages))), nil
		})
	} else {
		p.skip(ProbeFolder, earlier)
	}
	release() // the maildrop is closed: the SMTP step needs no lease
	switch {
	case !mb.SMTPEnabled:
		p.skip(ProbeSMTP, "sending is off (smtp_enabled = false)")
	case !token:
		p.skip(ProbeSMTP, earlier)
	default:
		p.run(ProbeSMTP, func() (string, error) { return p.smtp(ctx) })
	}
	return p.res
}

// errMaildropBusy is a POP3 probe that found a worker fetching the mailbox.
var errMaildropBusy = errors.New("a worker is fetching this mailbox right now, and a POP3 server " +
	"locks the maildrop for one session at a time (RFC 1939 section 8): run the test again when its pass has ended")

// lockMaildrop takes the mailbox's lease for a POP3 probe: the server
// would refuse a worker's login while the probe holds the maildrop, and the
// worker would record that as the mailbox failing. IMAP allows concurrent
// sessions and needs no lease. release gives the lease up.
func (p *probe) lockMaildrop(ctx context.Context) (release func(), err error) {
	if p.mb.Protocol != "pop3" {
		return func() {}, nil
	}
	ok, err := p.r.DB.Mailboxes().Lease(ctx, p.mb.ID, p.r.worker(), p.r.now(), p.r.leaseTTL())
	switch {
	case err != nil:
		return func() {}, fmt.Errorf("take the mailbox's lease: %w", err)
	case !ok:
		return func() {}, errMaildropBusy
	}
	// A dial and a UIDL listing of a large maildrop can outlast the TTL.
	stop := p.r.renew(ctx, p.mb, func(error) {})
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			p.r.release(ctx, p.mb)
		})
	}, nil
}

// probe is one Probe in progress.
type probe struct {
	r    *Runner
	mb   store.Mailbox
	opts ProbeOptions
	res  ProbeResult
}

// run runs step and reports whether it passed.
func (p *probe) run(name string, step func() (string, error)) bool {
	start := time.Now()
	detail, err := step()
	s := ProbeStep{Name: name, Detail: detail, Err: err, Duration: time.Since(start)}
	if err != nil {
		if name == ProbeSMTP {
			s.Message = sendFailure(p.mb, err)
		} else {
			s.Status, s.Message = classify(p.mb, err, p.r.now())
		}
	}
	p.add(s)
	return err == nil
}

func (p *probe) skip(name, why string) {
	p.add(ProbeStep{Name: name, Skipped: why})
}

func (p *probe) add(s ProbeStep) {
	p.res.Steps = append(p.res.Steps, s)
	if p.opts.Step != nil {
		p.opts.Step(s)
	}
}

// token gets the access token a pass would use, through the same path
// (refreshed under the row lock, a rotated refresh token stored first).
func (p *probe) token(ctx context.Context) (string, error) {
	mb := p.mb
	if mb.AuthType != "oauth2" {
		return "auth_type " + mb.AuthType + ": no token needed", nil
	}
	_, fresh, err := p.r.accessToken(ctx, mb, p.opts.Refresh)
	if err != nil {
		return "", err
	}
	now, err := p.r.DB.Mailboxes().Get(ctx, mb.ID)
	if err != nil {
		return "", err
	}
	until := "valid until " + now.AccessTokenExpiresAt.UTC().Format("2006-01-02 15:04Z")
	if now.AccessTokenExpiresAt.IsZero() {
		until = "no expiry sent"
	}
	if !fresh {
		return "cached access token, " + until, nil
	}
	detail := "new access token, " + until
	switch {
	case OAuthConfig(mb).Grant == "client_credentials":
		detail += " (app-only: no refresh token)"
	case now.RefreshToken != mb.RefreshToken:
		detail += "; the provider rotated the refresh token: the new one is stored"
	default:
		detail += "; refresh token unchanged"
	}
	return detail, nil
}

// smtp logs in to the mailbox's submission server and leaves.
func (p *probe) smtp(ctx context.Context) (string, error) {
	sub, err := p.r.openSubmission(ctx, p.mb)
	if err != nil {
		return "", err
	}
	if err := sub.Close(); err != nil {
		p.r.mailboxLog(p.mb).Debug("SMTP QUIT failed", "error", err)
	}
	srv, _ := SMTPServerOf(p.mb) // openSubmission checked it
	return fmt.Sprintf("logged in to %s:%d (%s) as %s (%s); nothing sent",
		srv.Host, srv.Port, securityName(srv.Security), smtpUsername(p.mb), mechanism(p.mb)), nil
}

// describeServer names where and how the mailbox connects.
func describeServer(mb store.Mailbox) string {
	sec := "plain, no TLS"
	switch {
	case mb.UseSSL:
		sec = "TLS"
	case mb.StartTLS:
		sec = "STARTTLS"
	}
	return fmt.Sprintf("%s %s:%d (%s)", mb.Protocol, mb.Host, mb.Port, sec)
}

func securityName(s mailbox.Security) string {
	switch s {
	case mailbox.TLS:
		return "TLS"
	case mailbox.StartTLS:
		return "STARTTLS"
	}
	return "plain, no TLS"
}

func mechanism(mb store.Mailbox) string {
	if mb.AuthType == "oauth2" {
		return "XOAUTH2"
	}
	return "password"
}

func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}

// ProbeFailed is the error of a probe with a failed step, naming it.
func ProbeFailed(res ProbeResult) error {
	var failed []string
	for _, s := range res.Steps {
		if s.Err != nil {
			failed = append(failed, s.Name)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return errors.New("failed at: " + strings.Join(failed, ", "))
}
