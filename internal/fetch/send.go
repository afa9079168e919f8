package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"time"

	"github.com/fetcherhq/fetcher/internal/mailbox"
	"github.com/fetcherhq/fetcher/internal/notify"
	"github.com/fetcherhq/fetcher/internal/store"
)

// sendBatch bounds the notifications one mailbox sends per pass; the
// rest follow next pass.
const sendBatch = 100

// maxSendAttempts is when a notification that keeps failing is given up:
// with the backoff below, about four hours after it was queued. An
// acknowledgement later than that confuses more than it helps.
const maxSendAttempts = 10

// Defaults of the acknowledgement rate limit (FETCHER_ACK_LIMIT,
// FETCHER_ACK_WINDOW): at most this many to one requester per window.
const (
	DefaultAckLimit  = 3
	DefaultAckWindow = time.Hour
)

// sendBackoff is the wait before attempt n+1 (n ≥ 1): 1 min doubling to at
// most 1 h, with a tenth of jitter so that many failing rows spread out.
func sendBackoff(attempts int) time.Duration {
	d := time.Minute << min(attempts-1, 6)
	d = min(d, time.Hour)
	return d + rand.N(d/10+1)
}

// notifying is how a mailbox sends, for the messages it stores: nil when
// smtp_enabled is off.
func (r *Runner) notifying(mb store.Mailbox) *store.Notifying {
	if !mb.SMTPEnabled {
		return nil
	}
	limit, window := r.AckLimit, r.AckWindow
	if limit == 0 {
		limit = DefaultAckLimit
	}
	if window <= 0 {
		window = DefaultAckWindow
	}
	return &store.Notifying{
		Sender: notify.Sender{
			MailboxName: mb.Name, Address: SenderAddress(mb), Name: strings.TrimSpace(mb.SMTPFromName),
			Own: ownAddresses(mb),
		},
		AckLimit: max(limit, 0), AckWindow: window,
	}
}

// sendOutbox sends the mailbox's due notifications over one SMTP session.
// Whatever goes wrong is recorded on the rows and in smtp_last_error, never
// on the fetching: a mailbox that fetches fine stays active. When ctx ends
// (a shutdown, a lost lease) the rows not sent are left as they were.
func (r *Runner) sendOutbox(ctx context.Context, log *slog.Logger, mb store.Mailbox) {
	if !mb.SMTPEnabled || ctx.Err() != nil {
		return
	}
	due, err := r.DB.Outbox().Due(ctx, mb.ID, sendBatch)
	if err != nil || len(due) == 0 {
		if err != nil {
			log.Error("cannot read the outbox", "error", err)
		}
		return
	}
	due = r.dropStale(ctx, log, r.markAccepted(ctx, log, due))
	if len(due) == 0 {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.mailboxTimeout())
	defer cancel()
	sub, err := r.openSubmission(ctx, mb)
	if err != nil {
		if parent.Err() == nil { // a shutdown is no failure to log in
			r.loginFailed(ctx, log, mb, due, err)
		}
		return
	}
	defer func() { _ = sub.Close() }()
	res := r.sendAll(ctx, log, mb, sub, due)
	if res.interrupted && parent.Err() == nil {
		// Not a shutdown: this pass's time for the mailbox ran out.
		res.interrupted = false
		res.failure = fmt.Sprintf("sending took longer than %s (FETCHER_MAILBOX_TIMEOUT) and stopped after %d of %d notifications; the rest follow next pass",
			r.mailboxTimeout(), res.sent, len(due))
	}
	log.Info("notifications sent", "sent", res.sent, "due", len(due), "failure", res.failure)
	if !res.interrupted {
		r.recordSend(ctx, log, mb, res.failure)
	}
}

// loginFailed records a session that could not be opened on every due
// row and on the mailbox.
func (r *Runner) loginFailed(ctx context.Context, log *slog.Logger, mb store.Mailbox, due []store.OutboxMessage, err error) {
	why := sendFailure(mb, err)
	log.Warn("cannot log in to send notifications; they wait for the next pass", "error", why, "waiting", len(due))
	r.postponeAll(ctx, log, due, why)
	r.recordSend(ctx, log, mb, why)
}

// markAccepted marks sent the rows a server accepted in an earlier pass of
// this process whose update failed then, and returns the others.
func (r *Runner) markAccepted(ctx context.Context, log *slog.Logger, due []store.OutboxMessage) []store.OutboxMessage {
	kept := due[:0]
	for _, m := range due {
		reply, ok := r.accepted.Load(m.ID)
		if !ok {
			kept = append(kept, m)
			continue
		}
		if err := r.DB.Outbox().MarkSent(ctx, m.ID, reply.(string)); err != nil {
			log.Error("a notification the server accepted still cannot be marked sent", "outbox_id", m.ID, "error", err)
			continue // neither sent again nor forgotten
		}
		r.accepted.Delete(m.ID)
	}
	return kept
}

// maxAckAge is how old an acknowledgement may be and still go out: one
// that waited longer (the mailbox could not send for a day) would confuse
// the requester more than it helps. Notifications to the admin still go.
const maxAckAge = 24 * time.Hour

// dropStale gives up the acknowledgements too old to send, and returns
// the rest.
func (r *Runner) dropStale(ctx context.Context, log *slog.Logger, due []store.OutboxMessage) []store.OutboxMessage {
	kept := due[:0]
	for _, m := range due {
		if m.Kind != notify.KindAck || r.now().Sub(m.CreatedAt) <= maxAckAge {
			kept = append(kept, m)
			continue
		}
		why := fmt.Sprintf("not sent: it waited since %s, and an acknowledgement more than %s late would confuse the requester; see the earlier attempts' errors on the mailbox (smtp_last_error)",
			m.CreatedAt.UTC().Format(time.RFC3339), maxAckAge)
		r.metrics().Notification("failed")
		r.outboxWrite(ctx, log, func(c context.Context) error { return r.DB.Outbox().MarkFailed(c, m.ID, why) })
	}
	return kept
}

// sendResult is what a batch did.
type sendResult struct {
	sent int
	// failure is the last failure in words ("" when all went out): the
	// session's, or the last message refused.
	failure string
	// interrupted: ctx ended, and the rows not sent were left alone.
	interrupted bool
}

// sendAll sends each due row. A refusal of one message is that row's; a
// broken connection, a refused sender or a row the server took but the
// database did not record stops the batch, and the rest wait for the
// next pass.
func (r *Runner) sendAll(ctx context.Context, log *slog.Logger, mb store.Mailbox, sub *mailbox.Submission, due []store.OutboxMessage) sendResult {
	var res sendResult
	for i, m := range due {
		if ctx.Err() != nil {
			res.interrupted = true
			return res
		}
		err := r.sendOne(ctx, mb, sub, m)
		var unrecorded *unrecordedError
		switch {
		case err == nil:
			res.sent++
			r.metrics().Notification("sent")
		case errors.As(err, &unrecorded):
			r.metrics().Notification("sent") // the server has it; only the row lags
			log.Error("the server accepted a notification but it could not be marked sent; the next pass marks it", "outbox_id", m.ID, "error", err)
			res.failure = err.Error()
			return res
		case ctx.Err() != nil:
			res.interrupted = true // a shutdown is no attempt of the row's
			return res
		case sessionFailure(err):
			res.failure = sendFailure(mb, err)
			log.Warn("sending stopped; the rest wait for the next pass", "error", res.failure)
			r.postponeAll(ctx, log, due[i:], res.failure)
			return res
		default:
			res.failure = sendFailure(mb, err)
			r.settleFailed(ctx, log, m, err, res.failure)
		}
	}
	return res
}

// sendOne builds and submits one notification and marks it sent.
func (r *Runner) sendOne(ctx context.Context, mb store.Mailbox, sub *mailbox.Submission, m store.OutboxMessage) error {
	raw, err := notify.Build(outgoing(mb, m, r.now()))
	if err != nil {
		return &buildError{err}
	}
	reply, err := sub.Send(ctx, SenderAddress(mb), []string{m.Recipient}, raw)
	if err != nil {
		return err
	}
	// The server has the message: recorded with a context of its own, as
	// a row left pending here would be sent twice.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := retry(rctx, func() error { return r.DB.Outbox().MarkSent(rctx, m.ID, reply) }); err != nil {
		r.accepted.Store(m.ID, reply)
		return &unrecordedError{err}
	}
	return nil
}

// unrecordedError is a notification the server accepted whose row could
// not be marked sent: it is no SMTP failure, and the row must not be
// counted as a failed attempt.
type unrecordedError struct{ err error }

func (e *unrecordedError) Error() string {
	return "a notification was sent but could not be marked sent: " + e.err.Error()
}
func (e *unrecordedError) Unwrap() error { return e.err }

// buildError is a notification that cannot be made into a message, such
// as one to an address that is not one: retrying cannot help.
type buildError struct{ err error }

func (e *buildError) Error() string { return "the notification cannot be built: " + e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// outgoing is the message for outbox row m, as sent now: the From is the
// mailbox's current setting, the rest as queued.
func outgoing(mb store.Mailbox, m store.OutboxMessage, now time.Time) notify.Outgoing {
	var ticketID int64
	if m.TicketID != nil {
		ticketID = *m.TicketID
	}
	return notify.Outgoing{
		Kind: m.Kind, TicketID: ticketID,
		From: mail.Address{Name: strings.TrimSpace(mb.SMTPFromName), Address: SenderAddress(mb)},
		To:   m.Recipient, Subject: m.Subject, Body: m.BodyText, MessageID: m.MessageID,
		InReplyTo: deref(m.InReplyTo), References: deref(m.ReferencesHeader), Date: now,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sessionFailure reports whether err is about the session, not the
// message: the connection broke, or the server refused the sending
// account (the sender, a quota, a block: the next would fail alike).
func sessionFailure(err error) bool {
	var se *mailbox.SMTPError
	if errors.As(err, &se) {
		// 421 closes the channel (RFC 5321 section 3.8).
		return se.Code == 421 || notify.AccountWide(se.Stage, se.Code, se.Enhanced, se.Text)
	}
	var be *buildError
	return !errors.As(err, &be) && !errors.Is(err, mailbox.ErrBadAddress)
}

// settleFailed records a refusal of one message: retried later when it may
// pass then, else given up.
func (r *Runner) settleFailed(ctx context.Context, log *slog.Logger, m store.OutboxMessage, err error, why string) {
	var se *mailbox.SMTPError
	retryable := errors.As(err, &se) && notify.Retryable(se.Stage, se.Code, se.Enhanced, se.Text)
	log = log.With("outbox_id", m.ID, "kind", m.Kind)
	if retryable && m.Attempts+1 < maxSendAttempts {
		log.Warn("notification refused for now; retrying later", "error", why)
		r.metrics().Notification("retry")
		r.outboxWrite(ctx, log, func(c context.Context) error {
			return r.DB.Outbox().Retry(c, m.ID, why, r.now().Add(sendBackoff(m.Attempts+1)))
		})
		return
	}
	log.Warn("notification given up", "error", why)
	r.metrics().Notification("failed")
	r.outboxWrite(ctx, log, func(c context.Context) error { return r.DB.Outbox().MarkFailed(c, m.ID, giveUpNote(m, why, retryable)) })
}

// postponeAll records a failed attempt on each row, to be retried with
// backoff, and gives up the rows that have failed too often.
func (r *Runner) postponeAll(ctx context.Context, log *slog.Logger, rows []store.OutboxMessage, why string) {
	for _, m := range rows {
		if m.Attempts+1 >= maxSendAttempts {
			r.metrics().Notification("failed")
			r.outboxWrite(ctx, log, func(c context.Context) error { return r.DB.Outbox().MarkFailed(c, m.ID, giveUpNote(m, why, true)) })
			continue
		}
		r.metrics().Notification("retry")
		r.outboxWrite(ctx, log, func(c context.Context) error {
			return r.DB.Outbox().Retry(c, m.ID, why, r.now().Add(sendBackoff(m.Attempts+1)))
		})
	}
}

// giveUpNote is the last_error of a notification given up.
func giveUpNote(m store.OutboxMessage, why string, tried bool) string {
	if !tried {
		return why
	}
	return fmt.Sprintf("given up after %d attempts: %s. To send it again once fixed: UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE id = %d",
		m.Attempts+1, why, m.ID)
}

// outboxWrite runs one outbox update with a context of its own, retried
// through a database blip: the outcome of an attempt must not be lost.
func (r *Runner) outboxWrite(ctx context.Context, log *slog.Logger, write func(context.Context) error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := retry(wctx, func() error { return write(wctx) }); err != nil {
		log.Error("cannot record a notification's outcome", "error", err)
	}
}

// recordSend reports the sending on the mailbox row ("" is success).
func (r *Runner) recordSend(ctx context.Context, log *slog.Logger, mb store.Mailbox, failure string) {
	r.outboxWrite(ctx, log, func(c context.Context) error { return r.DB.Mailboxes().RecordSendOutcome(c, mb.ID, failure) })
}

// sendFailure is the plain-words text of a sending failure, with what to
// do when that is known.
func sendFailure(mb store.Mailbox, err error) string {
	msg := err.Error()
	var se *mailbox.SMTPError
	if errors.As(err, &se) {
		if advice := notify.Advice(se.Stage, se.Code, se.Enhanced, se.Text); advice != "" {
			return msg + ". Do this: " + advice
		}
	}
	if mailbox.IsAuth(err) && mb.AuthType == "oauth2" && !strings.Contains(msg, "Do this:") {
		return msg + ". Do this: " + sendLoginAdvice(mb)
	}
	return msg
}

// sendLoginAdvice says what to check when the SMTP server refuses a token.
func sendLoginAdvice(mb store.Mailbox) string {
	switch {
	case mb.OAuthGrant == "client_credentials":
		return "app-only sending needs the SMTP.SendAsApp application permission with admin consent, and in Exchange Online PowerShell New-ServicePrincipal and Add-MailboxPermission for " + mb.Username + " (docs/notifications.md)"
	case mb.OAuthProvider == "microsoft":
		return "the token must carry https://outlook.office.com/SMTP.Send: add it to the app registration's API permissions, run fetcher authorize " + fmt.Sprintf("%q", mb.Name) + " again to consent, and make sure SMTP AUTH is enabled for the mailbox (Set-CASMailbox -Identity " + mb.Username + " -SmtpClientAuthenticationDisabled $false)"
	default:
		return "check smtp_username and that the token's scopes allow sending (Google: https://mail.google.com/)"
	}
}
