package ticket

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nested returns a message whose multiparts nest depth deep around a text part.
func nested(depth int) string {
	var open, closing strings.Builder
	open.WriteString("Subject: nested\r\n")
	for i := range depth {
		fmt.Fprintf(&open, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		closing.WriteString(fmt.Sprintf("--b%d--\r\n", depth-1-i))
	}
	return open.String() + "Content-Type: text/plain\r\n\r\ninnermost\r\n" + closing.String()
}

// flat returns a multipart/mixed message with n text parts.
func flat(n int) string {
	part := "--x\r\nContent-Type: text/plain\r\n\r\npart\r\n"
	return "Content-Type: multipart/mixed; boundary=x\r\n\r\n" + strings.Repeat(part, n) + "--x--\r\n"
}

func TestMIMEShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		raw                  string
		wantDepth, wantParts int
	}{
		{"not multipart", "Subject: x\r\n\r\n-- \r\nsignature\r\n", 0, 0},
		{"flat", flat(3), 1, 3},
		{"nested", nested(5), 5, 5},
		{"quoted boundary with spaces", "Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b\r\n\r\nx\r\n--a b--\r\n", 1, 1},
		{"undeclared dash lines ignored", flat(1) + "--not-a-boundary\r\n-- sql comment\r\n", 1, 1},
		{"stops past the depth limit", nested(100), DefaultMIMEDepth + 1, DefaultMIMEDepth + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			depth, parts := mimeShape([]byte(tt.raw), DefaultMIMEDepth)
			require.Equal(t, tt.wantDepth, depth, "mimeShape() depth = %d, want %d", depth, tt.wantDepth)
			require.Equal(t, tt.wantParts, parts, "mimeShape() parts = %d, want %d", parts, tt.wantParts)
		})
	}
}

// TestParseComplexMIME checks that structures which make enmime take
// exponential or quadratic time are refused quickly, with the body kept as
// text, while ordinary nesting still parses.
func TestParseComplexMIME(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		raw          string
		wantRefused  bool
		wantInBodies string
	}{
		{"ordinary nesting", nested(6), false, "innermost"},
		{"nested 40 deep", nested(40), true, "innermost"},
		{"ordinary part count", flat(50), false, "part"},
		{"too many parts", flat(DefaultMIMEParts + 10), true, "part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			m := Parse([]byte(tt.raw))
			require.Less(t, time.Since(start), 5*time.Second, "Parse() too slow")
			require.Equal(t, tt.wantRefused, strings.Contains(m.ParseError, "over the limit FETCHER_MAX_MIME_"), "ParseError = %q", m.ParseError)
			require.Contains(t, m.BodyText, tt.wantInBodies)
		})
	}
}
