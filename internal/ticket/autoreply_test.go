package ticket

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAutoReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		header           string
		wantAuto, wantNo bool
	}{
		{name: "ordinary mail", header: "From: a@example.com"},
		{name: "auto-submitted auto-replied", header: "Auto-Submitted: auto-replied", wantAuto: true, wantNo: true},
		{name: "auto-submitted auto-notified", header: "Auto-Submitted: auto-notified", wantAuto: true, wantNo: true},
		// Monitoring alerts and web forms: tickets, but never answered.
		{name: "auto-submitted auto-generated with params", header: "Auto-Submitted: Auto-Generated; owner-email=x@y", wantNo: true},
		{name: "auto-submitted no", header: "Auto-Submitted: no"},
		{name: "x-autoreply yes", header: "X-Autoreply: yes", wantAuto: true, wantNo: true},
		{name: "x-autoreply no", header: "X-Autoreply: no"},
		{name: "x-autorespond", header: "X-Autorespond: vacation", wantAuto: true, wantNo: true},
		{name: "precedence bulk", header: "Precedence: bulk", wantNo: true},
		{name: "precedence junk", header: "Precedence: junk", wantNo: true},
		{name: "precedence list", header: "Precedence: list", wantNo: true},
		{name: "precedence auto_reply", header: "Precedence: auto_reply", wantAuto: true, wantNo: true},
		{name: "precedence first-class", header: "Precedence: first-class"},
		{name: "delivery report", header: "Content-Type: multipart/report; report-type=delivery-status; boundary=x", wantAuto: true, wantNo: true},
		{name: "read receipt", header: "Content-Type: multipart/report; report-type=disposition-notification; boundary=x", wantAuto: true, wantNo: true},
		{name: "mailer-daemon", header: "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>", wantAuto: true, wantNo: true},
		{name: "mailer-daemon without domain", header: "From: Mail Delivery System <MAILER-DAEMON>", wantAuto: true, wantNo: true},
		{name: "postmaster", header: "From: postmaster@example.com", wantAuto: true, wantNo: true},
		{name: "null return-path", header: "Return-Path: <>", wantAuto: true, wantNo: true},
		{name: "exim failed recipients", header: "X-Failed-Recipients: a@example.com", wantAuto: true, wantNo: true},
		// Outlook and Exchange rules put X-Auto-Response-Suppress on ordinary
		// mail: it asks us not to answer but does not make the mail automatic.
		{name: "suppress all", header: "X-Auto-Response-Suppress: All", wantNo: true},
		{name: "suppress oof", header: "X-Auto-Response-Suppress: DR, OOF, AutoReply", wantNo: true},
		{name: "suppress receipts only", header: "X-Auto-Response-Suppress: DR, RN, NRN"},
		{name: "mailing list", header: "List-Id: Users <users.lists.example.org>", wantNo: true},
		{name: "list post", header: "List-Post: <mailto:users@lists.example.org>", wantNo: true},
		{name: "newsletter", header: "List-Unsubscribe: <https://news.example.org/u?x=1>", wantNo: true},
		{name: "ezmlm list", header: "Mailing-List: contact users-help@example.org; run by ezmlm", wantNo: true},
		{name: "old list", header: "X-Mailing-List: users@example.org", wantNo: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := strings.ReplaceAll(tt.header+"\nSubject: test\n\nbody\n", "\n", "\r\n")
			m := Parse([]byte(raw))
			require.Equal(t, tt.wantAuto, m.IsAutoReply, "IsAutoReply for %q", tt.header)
			require.Equal(t, tt.wantNo, m.NoAutoResponse, "NoAutoResponse for %q", tt.header)
		})
	}
}
