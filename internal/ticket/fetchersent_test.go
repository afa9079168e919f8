package ticket

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFromFetcher: mail carrying X-Fetcher-Notification was sent by a
// fetcher (this one or another installation) and must never be answered,
// whatever else its header says.
func TestFromFetcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		header      string
		wantFetcher bool
		wantAuto    bool
	}{
		{name: "ordinary mail", header: "From: a@example.com"},
		{name: "acknowledgement", header: "X-Fetcher-Notification: acknowledgement; ticket=12\nAuto-Submitted: auto-replied", wantFetcher: true, wantAuto: true},
		// An admin notification is auto-generated, not an auto-reply: it
		// may open a ticket, but nothing answers it.
		{name: "admin notification", header: "X-Fetcher-Notification: new_ticket; ticket=12\nAuto-Submitted: auto-generated", wantFetcher: true},
		// A gateway that drops Auto-Submitted and Precedence still leaves
		// our own field.
		{name: "field alone", header: "X-Fetcher-Notification: reply; ticket=3", wantFetcher: true},
		{name: "field name in other case", header: "x-fetcher-notification: reply; ticket=3", wantFetcher: true},
		{name: "blank field", header: "X-Fetcher-Notification: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := strings.ReplaceAll("From: a@example.com\n"+tt.header+"\nSubject: [#12] test\n\nbody\n", "\n", "\r\n")
			m := Parse([]byte(raw))
			require.Equal(t, tt.wantFetcher, m.FromFetcher, "FromFetcher")
			require.Equal(t, tt.wantAuto, m.IsAutoReply, "IsAutoReply")
			if tt.wantFetcher {
				require.True(t, m.NoAutoResponse, "fetcher mail must never be answered")
			}
		})
	}
}

// TestFromFetcherFallback: the header of mail too broken for the MIME
// parser is still read, so the loop stays broken for it too.
func TestFromFetcherFallback(t *testing.T) {
	t.Parallel()
	raw := []byte("X-Fetcher-Notification: acknowledgement; ticket=1\r\nSubject: x\r\n\r\nbody\r\n")
	m := parseFallback(raw, errors.New("test: unparseable"), DefaultLimits())
	require.True(t, m.FromFetcher)
	require.True(t, m.NoAutoResponse)
}
