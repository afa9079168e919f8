package ticket

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestThreadSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"   ", ""},
		{"Hello", "Hello"},
		{"  Hello  ", "Hello"},
		{"Re: Hello", "Hello"},
		{"RE: Hello", "Hello"},
		{"re:Hello", "Hello"},
		{"Aw: Hello", "Hello"},
		{"AW: Hello", "Hello"},
		{"SV: Hello", "Hello"},
		{"Fwd: Hello", "Hello"},
		{"FW: Hello", "Hello"},
		{"Fw: Hello", "Hello"},
		{"WG: Hello", "Hello"},
		{"Antw: Hello", "Hello"},
		{"Re[2]: Hello", "Hello"},
		{"Re(3): Hello", "Hello"},
		{"RE : Bonjour", "Bonjour"},
		{"TR: Bonjour", "Bonjour"},
		{"Re: Fwd: re: Hello", "Hello"},
		{"AW: WG: Antw: Re[4]: FW: Hello", "Hello"},
		{"回复：你好", "你好"},
		{"转发: 你好", "你好"},
		{"Re:", ""},
		{"Re: Re: ", ""},
		{"Re: [Ticket#12] Re: Hello", "[Ticket#12] Re: Hello"},
		{"Reminder: meeting", "Reminder: meeting"},
		{"Rework needed", "Rework needed"},
		{"Awaiting: parts", "Awaiting: parts"},
		{"Fwding: nothing", "Fwding: nothing"},
		{"Hello Re: world", "Hello Re: world"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ThreadSubject(tt.in), "ThreadSubject(%q)", tt.in)
		})
	}
}

func TestReferencedIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  Message
		want []string
	}{
		{name: "none", msg: Message{}, want: nil},
		{
			name: "in-reply-to then references newest first",
			msg: Message{
				InReplyTo:  "<c@x>",
				References: "<a@x> <b@x> <c@x>",
			},
			want: []string{"<c@x>", "<b@x>", "<a@x>"},
		},
		{
			name: "references only",
			msg:  Message{References: "<a@x>\t<b@x>"},
			want: []string{"<b@x>", "<a@x>"},
		},
		{
			name: "in-reply-to with a phrase",
			msg:  Message{InReplyTo: `<a@x> (John's message of "Mon, 1 Jan 2024")`},
			want: []string{"<a@x>"},
		},
		{
			name: "bare ids from a broken mailer",
			msg:  Message{InReplyTo: "a@x", References: "b@x c@x"},
			want: []string{"<a@x>", "<c@x>", "<b@x>"},
		},
		{
			name: "own id and empty brackets left out",
			msg:  Message{MessageID: "<self@x>", InReplyTo: "<>", References: "<a@x> <self@x>"},
			want: []string{"<a@x>"},
		},
		{
			name: "duplicates removed",
			msg:  Message{InReplyTo: "<a@x>", References: "<a@x> <b@x> <a@x>"},
			want: []string{"<a@x>", "<b@x>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.msg.ReferencedIDs()
			if len(tt.want) == 0 {
				require.Empty(t, got, "ReferencedIDs() = %v, want none", got)
				return
			}
			require.Equal(t, tt.want, got, "ReferencedIDs() = %v, want %v", got, tt.want)
		})
	}
}

func TestTicketTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject string
		want    int64
		ok      bool
	}{
		{"Re: [#123] Printer broken", 123, true},
		{"AW: [Ticket#42] VPN", 42, true},
		{"RE: [ticket #7] x", 7, true},
		{"Invoice #123", 0, false},
		{"[#0] zero", 0, false},
		{"no tag", 0, false},
	}
	for _, tt := range tests {
		got, ok := TicketTag(tt.subject)
		require.Equal(t, tt.ok, ok, "TicketTag(%q)", tt.subject)
		require.Equal(t, tt.want, got, "TicketTag(%q)", tt.subject)
	}
}
