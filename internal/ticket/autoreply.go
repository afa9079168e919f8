package ticket

import "strings"

// autoReplyChecks each recognise one sign of machine-sent mail. Any one of
// them is enough: a false positive only skips an acknowledgment, a false
// negative can start a mail loop.
var autoReplyChecks = []func(h header, from string) bool{
	autoSubmitted,
	autoReplyHeader,
	bulkPrecedence,
	report,
	bounceHeader,
	daemonSender,
}

// isAutoReply reports whether the message is an auto-reply, a vacation
// notice, a bounce or a read receipt. X-Auto-Response-Suppress is not a sign:
// Outlook, Exchange transport rules and ticket systems put it on ordinary
// mail to ask others not to answer it automatically, so it feeds
// noAutoResponse instead.
func isAutoReply(h header, from string) bool {
	for _, check := range autoReplyChecks {
		if check(h, from) {
			return true
		}
	}
	return false
}

// noAutoResponse reports whether the sender asked not to be answered
// automatically: X-Auto-Response-Suppress with All, OOF or AutoReply (MS-OXCMAIL
// 2.1.3.2.20), or a mailing list (RFC 3834 section 2 says not to answer
// List-Id mail).
func noAutoResponse(h header) bool {
	if h.has("List-Id") {
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

// bulkPrecedence: Precedence bulk, junk, list or auto_reply (RFC 3834
// section 3.1.8 lists the first three as reasons not to answer).
func bulkPrecedence(h header, _ string) bool {
	switch token(h.raw("Precedence")) {
	case "bulk", "junk", "list", "auto_reply":
		return true
	}
	return false
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
