package mailbox_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fetcherhq/fetcher/internal/mailbox"
)

// lockedTrace is a trace writer safe for the session's two goroutines.
type lockedTrace struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedTrace) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedTrace) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIMAPTraceLayers: the trace shows IMAP lines, each marked C: or S:,
// over implicit TLS, STARTTLS and plain text; never TLS records.
func TestIMAPTraceLayers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		security string
		want     []string
	}{
		{"tls", []string{"C: T1 AUTHENTICATE XOAUTH2 [redacted]\n"}},
		{"plain", []string{"C: T1 AUTHENTICATE XOAUTH2 [redacted]\n"}},
		{"starttls", []string{"S: * OK", "C: T0 STARTTLS\n", "S: T0 OK", "C: T1 CAPABILITY\n", "C: T2 AUTHENTICATE XOAUTH2 [redacted]\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.security, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.security)
			var trace lockedTrace
			b.opts.DebugWriter = &trace
			s := open(t, b)
			_, err := s.List(context.Background(), mailbox.Cursor{})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			got := trace.String()
			for _, w := range append(tt.want, " SELECT INBOX\n", "S: * 0 EXISTS\n", " LOGOUT\n") {
				require.Contains(t, got, w)
			}
			require.True(t, utf8.ValidString(got), "TLS records in the trace:\n%q", got)
			for _, line := range strings.SplitAfter(got, "\n") {
				if line != "" && !strings.HasPrefix(line, "C: ") && !strings.HasPrefix(line, "S: ") {
					t.Fatalf("line %q without C: or S: in\n%s", line, got)
				}
			}
			require.NotContains(t, got, goodToken)
			require.NotContains(t, got, base64.StdEncoding.EncodeToString(mailbox.XOAUTH2Response(user, goodToken))[:16])
		})
	}
}
