package notify

import (
	"regexp"
	"slices"
	"strings"
)

// refusal is an SMTP server's refusal, normalised for matching.
type refusal struct {
	stage    string // "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data"
	code     int    // 535
	enhanced string // "5.7.139" (RFC 3463), from the reply or found in its text
	text     string // lower case
}

// enhancedCode finds an RFC 3463 status code in a reply text.
var enhancedCode = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)

func newRefusal(stage string, code int, enhanced, text string) refusal {
	enhanced = strings.TrimSpace(enhanced)
	if enhanced == "" {
		enhanced = enhancedCode.FindString(text)
	}
	return refusal{stage: strings.ToLower(stage), code: code, enhanced: enhanced, text: strings.ToLower(text)}
}

// session reports a refusal of the session rather than of one message:
// the connection, TLS or the login.
func (r refusal) session() bool {
	switch r.stage {
	case "greeting", "ehlo", "starttls", "auth":
		return true
	}
	return false
}

// rule is what is known about one kind of refusal: what the admin should
// do, and whether the message is worth sending again later.
type rule struct {
	match  func(refusal) bool
	advice string
	retry  bool
}

func enh(codes ...string) func(refusal) bool {
	return func(r refusal) bool { return slices.Contains(codes, r.enhanced) }
}

func has(texts ...string) func(refusal) bool {
	return func(r refusal) bool {
		return slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(r.text, t) })
	}
}

func anyOf(ms ...func(refusal) bool) func(refusal) bool {
	return func(r refusal) bool { return slices.ContainsFunc(ms, func(m func(refusal) bool) bool { return m(r) }) }
}

func allOf(ms ...func(refusal) bool) func(refusal) bool {
	return func(r refusal) bool {
		return !slices.ContainsFunc(ms, func(m func(refusal) bool) bool { return !m(r) })
	}
}

func code(codes ...int) func(refusal) bool {
	return func(r refusal) bool { return slices.Contains(codes, r.code) }
}

func stage(s string) func(refusal) bool { return func(r refusal) bool { return r.stage == s } }

// login matches a refusal of the login itself.
var login = anyOf(stage("auth"), code(534, 535))

// rules hold what Microsoft's and Google's documentation and the issue
// trackers of other mail products say about the refusals admins meet. The
// first match wins, so specific texts come before the codes they share.
//
// Retrying follows one principle: a refusal of this message or recipient
// (unknown user, a From the mailbox may not use) is permanent, as a 5xx
// reply says (RFC 5321 section 4.2.1); a refusal that is about the sending
// account (its login, its limits, a block of the tenant) is not the
// message's fault, and the message goes out once the admin has fixed it
// or the limit has passed, so it is kept and retried with backoff.
var rules = []rule{
	{anyOf(enh("5.7.60"), has("sendasdenied", "send as this sender")),
		"The mailbox may not send as its smtp_from address (SendAsDenied): set smtp_from to the mailbox's own address, " +
			"or grant the mailbox Send As on that address (Exchange: Add-RecipientPermission -Identity <smtp_from> -Trustee <mailbox> -AccessRights SendAs).",
		false},
	{anyOf(enh("5.1.90"), has("submissionquotaexceeded", "exceededmessagelimit", "messageratelimitexceeded", "recipientratelimitexceeded")),
		"Exchange Online's sending limit for this mailbox is reached (10,000 recipients a day; 30 messages a minute over SMTP AUTH): " +
			"sending resumes by itself, within 24 hours for the daily limit. If it recurs, send fewer notifications.",
		true},
	{allOf(enh("5.7.139"), has("security defaults")),
		"Microsoft Entra security defaults block SMTP AUTH with a password for this account: use OAuth for the mailbox, " +
			"or replace security defaults with Conditional Access policies.",
		true},
	{allOf(enh("5.7.139"), has("basic authentication is disabled")),
		"Exchange Online takes no password for SMTP AUTH for this account: use OAuth for the mailbox.",
		true},
	{allOf(enh("5.7.139"), has("credentials were incorrect")),
		"Exchange Online rejected the user name or password: check smtp_username and the password; an account with MFA needs OAuth.",
		true},
	{anyOf(enh("5.7.139"), has("smtpclientauthentication is disabled")),
		"SMTP AUTH is turned off for this mailbox or the tenant. In Exchange Online PowerShell: " +
			"Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false (this mailbox), " +
			"or Set-TransportConfig -SmtpClientAuthenticationDisabled $false (the tenant). " +
			"Microsoft Entra security defaults block it too. Changes take up to an hour.",
		true},
	{allOf(enh("5.7.3"), login),
		"Exchange Online rejected the login. With OAuth, the token lacks SMTP.Send: authorize the mailbox again with the scope " +
			"https://outlook.office.com/SMTP.Send. App-only: give the app the SMTP.SendAsApp permission with admin consent, then run " +
			"New-ServicePrincipal and Add-MailboxPermission for the mailbox in Exchange Online PowerShell. With a password: SMTP AUTH may be off for the mailbox.",
		true},
	{allOf(has("starttls"), anyOf(code(530), enh("5.7.0"))),
		"The server requires STARTTLS before login: use port 587 with STARTTLS, or port 465 with TLS.",
		true},
	{anyOf(enh("5.7.57"), allOf(code(530), has("authentication required"))),
		"The server takes mail only after login: set up SMTP login for this mailbox (smtp_username with a password, or OAuth). " +
			"For Microsoft 365 send to smtp.office365.com port 587, not to the domain's MX host.",
		true},
	{anyOf(enh("5.1.1", "5.1.10"), has("recipientnotfound", "user unknown", "unknown user", "no such user")),
		"The recipient address does not exist: for an admin notification fix ticket_types.admin_email; " +
			"for an acknowledgement the requester's address is wrong or forged, and nothing needs doing.",
		false},
	{anyOf(enh("5.4.5"), has("daily user sending limit", "daily sending quota")),
		"The account's daily sending limit is reached (Gmail counts per 24 hours): sending resumes by itself. If it recurs, send fewer notifications.",
		true},
	{enh("5.7.705"),
		"Microsoft blocked outbound mail of the whole tenant because too much spam or bulk mail came from it, often from a compromised account: " +
			"secure the accounts, then ask Microsoft support to lift the block.",
		true},
	{enh("5.7.708"),
		"Microsoft accepts no outbound mail from this tenant's IP addresses (low reputation, common for new tenants): ask Microsoft support to lift the restriction.",
		true},
	{enh("5.7.750"),
		"Microsoft blocks mail from domains not registered in the tenant: add and verify smtp_from's domain as an accepted domain " +
			"(Microsoft 365 admin center > Settings > Domains), or send from a registered address.",
		true},
	{anyOf(enh("5.1.8"), has("bad outbound sender")),
		"Microsoft restricted this account from sending, usually after it sent spam: secure the account, then release it in the " +
			"Microsoft Defender portal (Email & collaboration > Review > Restricted entities).",
		true},
	{anyOf(enh("5.7.9"), has("application-specific password")),
		"Google requires an app password for this account (2-Step Verification is on): create one, or better, use OAuth for the mailbox.",
		true},
	{anyOf(enh("5.7.14"), has("log in via your web browser", "sign in via your web browser")),
		"Google blocked the sign-in: sign in to the account once in a web browser, or better, use OAuth for the mailbox.",
		true},
	{allOf(login, anyOf(enh("5.7.8"), has("username and password not accepted", "badcredentials"))),
		"The server rejected the credentials. With OAuth, authorize the mailbox again (the token was revoked or lacks the scope; " +
			"Google needs https://mail.google.com/). With a password, check it or use an app password.",
		true},
	{anyOf(enh("4.7.66"), has("tls 1.0 and 1.1 are not supported")),
		"The server requires TLS 1.2 or newer: check for a proxy or TLS settings between fetcher and the server that lower it.",
		true},
	{anyOf(enh("4.7.500"), has("server busy")),
		"The server is throttling this client: fetcher sends later; nothing to do unless it lasts for hours.",
		true},
	// RFC 3463 section 3.3: X.2.2 "should be used as a persistent
	// transient failure": the recipient can make room.
	{anyOf(enh("5.2.2", "4.2.2"), has("mailbox full", "mailbox is full")),
		"The recipient's mailbox is full: fetcher sends later; if it lasts, the recipient must make room (or fix ticket_types.admin_email).",
		true},
	{has("relay access denied", "relaying denied", "relay not permitted", "unable to relay"),
		"The server refuses to relay: log in as the mailbox (smtp_username) and send from its own address (smtp_from).",
		true},
	{allOf(stage("auth"), code(535)),
		"The server rejected the login: check smtp_username and the password, or authorize the mailbox's OAuth again.",
		true},
	{allOf(stage("greeting"), code(554)),
		"The server refused the connection: check the SMTP host and port; the server may not take mail from this network.",
		true},
}

// accountRefusal matches refusals of the sending account, whatever the
// stage they come at: Exchange refuses a From the mailbox may not use, and
// its quotas, only after the message's final dot. Every message would be
// refused alike until the admin acts or the limit passes.
var accountRefusal = anyOf(
	enh("5.7.60", "5.1.90", "5.4.5", "5.7.705", "5.7.708", "5.7.750", "5.1.8", "5.7.57", "4.7.500"),
	has("sendasdenied", "send as this sender", "submissionquotaexceeded", "exceededmessagelimit",
		"messageratelimitexceeded", "recipientratelimitexceeded", "daily user sending limit",
		"daily sending quota", "bad outbound sender", "server busy"),
)

// AccountWide reports whether a refusal is about the sending account or the
// session rather than one message: sending more in this pass is pointless,
// and the messages wait for the next.
func AccountWide(stage string, code int, enhanced, text string) bool {
	r := newRefusal(stage, code, enhanced, text)
	return r.session() || r.stage == "mail" || accountRefusal(r)
}

func find(r refusal) *rule {
	for i := range rules {
		if rules[i].match(r) {
			return &rules[i]
		}
	}
	return nil
}

// Advice returns what the admin should do about a refusal, or "" when
// nothing specific is known. stage is "auth", "mail", "rcpt", "data",
// "greeting", "ehlo" or "starttls"; code is the reply code (535);
// enhanced the RFC 3463 code ("5.7.139"), or "" to look for one in text,
// the server's text.
func Advice(stage string, code int, enhanced, text string) string {
	if ru := find(newRefusal(stage, code, enhanced, text)); ru != nil {
		return ru.advice
	}
	return ""
}

// Retryable reports whether a refusal of one message is worth retrying
// later. Transient replies (4xx, RFC 5321 section 4.2.1), refusals of the
// session (connection, TLS, login), sending limits and blocks of the
// account are; other 5xx replies, which refuse this message or recipient,
// are not. A reply without a code (0, a broken connection) is retried.
func Retryable(stage string, code int, enhanced, text string) bool {
	r := newRefusal(stage, code, enhanced, text)
	if r.code >= 400 && r.code < 500 {
		return true
	}
	if ru := find(r); ru != nil {
		return ru.retry
	}
	return r.code < 500 || r.session()
}
