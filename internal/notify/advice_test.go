package notify

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAdvice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stage    string
		code     int
		enhanced string
		text     string
		advice   string // part of the advice; "" = none
		retry    bool
	}{
		{"exchange smtp auth disabled for tenant", "auth", 535, "5.7.139",
			"Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
			"Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false", true},
		{"enhanced code found in the text", "auth", 535, "",
			"5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
			"Set-TransportConfig -SmtpClientAuthenticationDisabled $false", true},
		{"exchange security defaults", "auth", 535, "5.7.139",
			"Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.",
			"security defaults", true},
		{"exchange basic auth disabled", "auth", 535, "5.7.139", "Authentication unsuccessful, basic authentication is disabled.",
			"use OAuth", true},
		{"exchange wrong password", "auth", 535, "5.7.139", "Authentication unsuccessful, the user credentials were incorrect.",
			"check smtp_username and the password", true},
		{"exchange token without SMTP.Send", "auth", 535, "5.7.3", "Authentication unsuccessful [SN4PR0201CA0030.namprd02.prod.outlook.com]",
			"SMTP.SendAsApp", true},
		{"5.7.3 outside login is something else", "data", 554, "5.7.3", "Security conversion required", "", false},
		{"send as denied", "data", 554, "5.2.0",
			"STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception",
			"Send As", false},
		{"5.7.60", "mail", 550, "5.7.60", "SMTP; Client does not have permissions to send as this sender", "smtp_from", false},
		{"exchange daily quota", "data", 554, "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message",
			"within 24 hours", true},
		{"exchange message rate", "data", 554, "5.2.0", "STOREDRV.Submission.Exception:MessageRateLimitExceeded", "30 messages a minute", true},
		{"exchange recipient limit", "rcpt", 550, "5.1.90", "Your message can't be sent because you've reached your daily limit for message recipients",
			"sending limit", true},
		{"not authenticated", "mail", 530, "5.7.57", "Client not authenticated to send mail.", "smtp.office365.com", true},
		{"gmail authentication required", "mail", 530, "5.7.0", "Authentication Required. Learn more at https://support.google.com/mail/?p=WantAuthError",
			"only after login", true},
		{"starttls first", "mail", 530, "5.7.0", "Must issue a STARTTLS command first.", "STARTTLS", true},
		{"unknown recipient", "rcpt", 550, "5.1.1", "The email account that you tried to reach does not exist.", "ticket_types.admin_email", false},
		{"exchange recipient not found", "rcpt", 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
			"ticket_types.admin_email", false},
		{"gmail daily limit", "data", 550, "5.4.5", "Daily user sending limit exceeded.", "daily sending limit", true},
		{"tenant exceeded threshold", "data", 550, "5.7.705", "Access denied, tenant has exceeded threshold", "Microsoft support", true},
		{"tenant ip reputation", "mail", 550, "5.7.708", "Service unavailable. Access denied, traffic not accepted from this IP.", "Microsoft support", true},
		{"unregistered domain", "mail", 550, "5.7.750", "Service unavailable. Client blocked from sending from unregistered domains",
			"accepted domain", true},
		{"restricted sender", "mail", 550, "5.1.8", "Access denied, bad outbound sender", "Restricted entities", true},
		{"gmail app password", "auth", 534, "5.7.9", "Application-specific password required.", "app password", true},
		{"gmail web login", "auth", 534, "5.7.14", "<https://accounts.google.com/signin/continue?...> Please log in via your web browser and then try again.",
			"web browser", true},
		{"gmail bad credentials", "auth", 535, "5.7.8", "Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials",
			"https://mail.google.com/", true},
		{"old tls", "starttls", 421, "4.7.66", "TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.", "TLS 1.2", true},
		{"server busy", "greeting", 451, "4.7.500", "Server busy. Please try again later from [203.0.113.9]. (S77719)", "throttling", true},
		{"mailbox full", "rcpt", 552, "5.2.2", "The email account that you tried to reach is over quota.", "mailbox is full", true},
		{"relay denied", "rcpt", 554, "5.7.1", "<a@example.net>: Relay access denied", "relay", true},
		{"generic login refusal", "auth", 535, "", "authentication failed", "rejected the login", true},
		{"greeting refused", "greeting", 554, "", "mx.example.org ESMTP not accepting messages", "refused the connection", true},
		// Nothing specific known: the reply code decides.
		{"unknown 4xx", "data", 451, "4.3.0", "Temporary local problem", "", true},
		{"unknown 4xx beats a permanent-looking text", "rcpt", 450, "4.1.1", "Recipient address rejected: unverified address", "", true},
		{"unknown 5xx", "data", 554, "5.6.0", "Message rejected: content", "", false},
		{"unknown 5xx ehlo", "ehlo", 502, "", "command not implemented", "", true},
		{"no reply at all", "data", 0, "", "connection reset by peer", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Advice(tc.stage, tc.code, tc.enhanced, tc.text)
			if tc.advice == "" {
				require.Empty(t, got)
			} else {
				require.Contains(t, got, tc.advice)
			}
			require.Equal(t, tc.retry, Retryable(tc.stage, tc.code, tc.enhanced, tc.text))
		})
	}
}

// TestAdviceShort: advice is read in a status line and a log; it stays
// short and on one line.
func TestAdviceShort(t *testing.T) {
	t.Parallel()
	for _, r := range rules {
		require.LessOrEqual(t, len(r.advice), 450, r.advice)
		require.NotContains(t, r.advice, "\n")
	}
}

func TestAccountWide(t *testing.T) {
	tests := []struct {
		stage, enhanced, text string
		code                  int
		want                  bool
	}{
		{"data", "5.2.0", "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied", 554, true},
		{"data", "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuotaExceededException", 554, true},
		{"data", "5.4.5", "Daily user sending limit exceeded", 550, true},
		{"rcpt", "5.7.708", "Service unavailable. Access denied, traffic not accepted from this IP", 550, true},
		{"mail", "", "whatever", 550, true},
		{"auth", "5.7.3", "Authentication unsuccessful", 535, true},
		{"rcpt", "5.1.1", "User unknown", 550, false},
		{"data", "4.3.0", "Try again later", 451, false},
		{"data", "5.6.0", "Message rejected: content", 554, false},
	}
	for _, tt := range tests {
		if got := AccountWide(tt.stage, tt.code, tt.enhanced, tt.text); got != tt.want {
			t.Errorf("AccountWide(%s %d %s %q) = %v, want %v", tt.stage, tt.code, tt.enhanced, tt.text, got, tt.want)
		}
	}
}
