package ticket

import "strings"

// autoReplyChecks each recognise one sign of mail a machine sent in answer
// to other mail: an auto-reply, a vacation notice, a bounce or a read
// receipt. These decide where the mail goes (it opens no ticket of its
// own), so they are the narrow, reliable signs: mail that is merely
// machine-made or sent to many (monitoring alerts, web forms, mailing
// lists, newsletters) is a ticket like any other, and only
// noAutoResponse keeps us from answering it.
var autoReplyChecks = []func(h header, from string) bool{
	autoReplied,
	autoReplyHeader,
	autoReplyPrecedence,
	report,
	bounceHeader,
	daemonSender,
}

// bounceChecks recognise a report about a message we sent: only these
// carry that message (or its header) as the thing to thread by.
var bounceChecks = []func(h header, from string) bool{report, bounceHeader, daemonSender}

// isAutoReply reports whether the message is an auto-reply, a vacation
// notice, a bounce or a read receipt.
func isAutoReply(h header, from string) bool { return anyOf(autoReplyChecks, h, from) }

// isBounce reports whether the message is a delivery or read report.
func isBounce(h header, from string) bool { return anyOf(bounceChecks, h, from) }

func anyOf(checks []func(header, string) bool, h header, from string) bool {
	for _, check := range checks {
		if check(h, from) {
			return true
		}
	}
	return false
}

// noAutoResponse reports whether nothing may be sent back automatically
// (RFC 3834 section 2): any Auto-Submitted but "no" (auto-generated alerts
// and forms included), Precedence bulk, junk or list, a mailing list
// (List-Id), or the sender asked for it with X-Auto-Response-Suppress All,
// OOF or AutoReply (MS-OXCMAIL 2.1.3.2.20). Outlook, Exchange transport
// rules and ticket systems put that field on ordinary mail, so it is no
// sign of an auto-reply.
func noAutoResponse(h header) bool {
	if mailingList(h) || autoSubmitted(h, "") || bulkPrecedence(h, "") {
		return true
	}
	for _, v := range strings.Split(h.raw("X-Auto-Response-Suppress"), ",") {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "all", "oof", "autoreply":
			return true
		}
	}
	return false
}

// fromFetcher reports whether a fetcher sent the message: every
// notification and acknowledgement it sends carries X-Fetcher-Notification
// (see package notify). The other loop fields (Auto-Submitted, Precedence)
// may be stripped or rewritten by gateways and mailing lists; this one is
// ours, so it also catches another installation's mail.
func fromFetcher(h header) bool { return h.has("X-Fetcher-Notification") }

// mailingList: the fields list software adds (RFC 2919 List-Id, RFC 2369
// List-Post and List-Unsubscribe, ezmlm's Mailing-List, older lists'
// X-Mailing-List). Mail with List-Unsubscribe is a newsletter or a
// machine's notice at best: nobody there reads an acknowledgement.
func mailingList(h header) bool {
	for _, name := range []string{"List-Id", "List-Post", "List-Unsubscribe", "Mailing-List", "X-Mailing-List"} {
		if h.has(name) {
			return true
		}
	}
	return false
}

// autoReplied: Auto-Submitted auto-replied (RFC 3834 section 5.1), or
// auto-notified (RFC 5436 section 2.7, Sieve notifications).
func autoReplied(h header, _ string) bool {
	switch token(h.raw("Auto-Submitted")) {
	case "auto-replied", "auto-notified":
		return true
	}
	return false
}

// autoSubmitted: Auto-Submitted with any value but "no" (RFC 3834 section 5).
func autoSubmitted(h header, _ string) bool {
	v := token(h.raw("Auto-Submitted"))
	return v != "" && v != "no"
}

// autoReplyHeader: the non-standard X-Autoreply, X-Autorespond and
// X-Autoresponder fields of vacation programs, unless set to "no".
func autoReplyHeader(h header, _ string) bool {
	for _, name := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder"} {
		switch v := token(h.raw(name)); v {
		case "", "no", "false", "0":
		default:
			return true
		}
	}
	return false
}

// bulkPrecedence: Precedence bulk, junk or list, which RFC 3834 section
// 3.1.8 lists as reasons not to answer.
func bulkPrecedence(h header, _ string) bool {
	switch token(h.raw("Precedence")) {
	case "bulk", "junk", "list":
		return true
	}
	return false
}

// autoReplyPrecedence: the non-standard Precedence auto_reply of some
// vacation programs.
func autoReplyPrecedence(h header, _ string) bool {
	return token(h.raw("Precedence")) == "auto_reply"
}

// report: a multipart/report (RFC 6522), that is a delivery status
// notification (bounce) or a disposition notification (read receipt).
func report(h header, _ string) bool {
	return token(h.raw("Content-Type")) == "multipart/report"
}

// bounceHeader: X-Failed-Recipients (Exim bounces) or a null Return-Path,
// the envelope sender of bounces and RFC 3834 auto-replies.
func bounceHeader(h header, _ string) bool {
	if h.has("X-Failed-Recipients") {
		return true
	}
	rp := h.fields.Values("Return-Path")
	return len(rp) > 0 && strings.TrimSpace(rp[0]) == "<>"
}

// daemonSender: From MAILER-DAEMON or postmaster, the senders of bounces.
func daemonSender(_ header, from string) bool {
	local, _, _ := strings.Cut(from, "@")
	return strings.EqualFold(local, "mailer-daemon") || strings.EqualFold(local, "postmaster")
}

// token returns the first word of a structured value, lower case, without
// parameters or comments: "auto-replied; foo" and "Bulk (x)" give
// "auto-replied" and "bulk".
func token(v string) string {
	v, _, _ = strings.Cut(v, ";")
	v, _, _ = strings.Cut(v, "(")
	f := strings.Fields(v)
	if len(f) == 0 {
		return ""
	}
	return strings.ToLower(f[0])
}
