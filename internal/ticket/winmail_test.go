package ticket

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEmptyWinmailIsKept: a winmail.dat with nothing we unpack (a meeting
// request, a contact card) stays an attachment rather than vanish.
func TestEmptyWinmailIsKept(t *testing.T) {
	m := &Message{Attachments: []Attachment{{
		Filename: "winmail.dat", ContentType: "application/ms-tnef",
		Data: []byte{0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00}, // signature and key only
	}}}
	var p problems
	unpackTNEF(m, DefaultLimits(), newBudget(DefaultDecodedBytes), &p)
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "winmail.dat", m.Attachments[0].Filename)
	require.Empty(t, p.String())
}
