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
	return nestedAs(depth, plainBoundary, true)
}

// nestedAs returns a message whose multiparts nest depth deep around a
// text part, the boundary b<i> of level i declared by param(i), closed or
// left open.
func nestedAs(depth int, param func(i int) string, closed bool) string {
	var open, closing strings.Builder
	open.WriteString("Subject: nested\r\n")
	for i := range depth {
		fmt.Fprintf(&open, "Content-Type: multipart/mixed; %s\r\n\r\n--b%d\r\n", param(i), i)
		if closed {
			closing.WriteString(fmt.Sprintf("--b%d--\r\n", depth-1-i))
		}
	}
	return open.String() + "Content-Type: text/plain\r\n\r\ninnermost\r\n" + closing.String()
}

func plainBoundary(i int) string { return fmt.Sprintf("boundary=b%d", i) }

// Boundaries b<i> in the forms of RFC 2231 (continuations, section 3;
// charset, section 4; both, section 4.1) and RFC 2047 section 5 (an
// encoded-word in place of the parameter), which enmime reads too.
func continuedBoundary(i int) string { return fmt.Sprintf(`boundary*0="b"; boundary*1="%d"`, i) }
func charsetBoundary(i int) string   { return fmt.Sprintf("boundary*=us-ascii''b%d", i) }
func continuedCharsetBoundary(i int) string {
	return fmt.Sprintf("boundary*0*=us-ascii''b; boundary*1*=%d", i)
}
func encodedBoundary(i int) string { return fmt.Sprintf("=?us-ascii?Q?boundary=3Db%d?=", i) }

// unreadBoundary declares no boundary anyone reads: an extended value
// without its charset (RFC 2231 section 4) is dropped.
func unreadBoundary(i int) string { return fmt.Sprintf("boundary*0*=b%d", i) }

// flat returns a multipart/mixed message with n text parts.
func flat(n int) string {
	return flatAs(n, "boundary=x", "x")
}

// flatAs returns a multipart/mixed message with n text parts whose
// boundary b is declared by param.
func flatAs(n int, param, b string) string {
	part := "--" + b + "\r\nContent-Type: text/plain\r\n\r\npart\r\n"
	return "Content-Type: multipart/mixed; " + param + "\r\n\r\n" + strings.Repeat(part, n) + "--" + b + "--\r\n"
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
		{"RFC 2231 continuation", nestedAs(5, continuedBoundary, true), 5, 5},
		{"RFC 2231 charset", nestedAs(5, charsetBoundary, true), 5, 5},
		{"RFC 2231 continued charset", nestedAs(5, continuedCharsetBoundary, true), 5, 5},
		{"RFC 2047 encoded parameter", nestedAs(5, encodedBoundary, true), 5, 5},
		{"RFC 2231 unclosed", nestedAs(5, continuedBoundary, false), 5, 5},
		{"folded field", "Content-Type: multipart/mixed;\r\n\tboundary*0=\"a\";\r\n boundary*1=\"b\"\r\n\r\n--ab\r\n\r\nx\r\n--ab--\r\n", 1, 1},
		{"unindented continuation", "content-type: multipart/mixed;\r\nboundary*0=\"a\"; boundary*1=\"b\"\r\n\r\n--ab\r\n\r\nx\r\n--ab--\r\n", 1, 1},
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
		// Unclosed, these take enmime seconds at depth 24 and minutes at 30.
		{"RFC 2231 continuation nested 30 deep", nestedAs(30, continuedBoundary, false), true, "innermost"},
		{"RFC 2231 charset nested 30 deep", nestedAs(30, charsetBoundary, false), true, "innermost"},
		{"RFC 2231 continued charset nested 30 deep", nestedAs(30, continuedCharsetBoundary, false), true, "innermost"},
		{"RFC 2047 encoded parameter nested 30 deep", nestedAs(30, encodedBoundary, false), true, "innermost"},
		{"RFC 2231 too many parts", flatAs(DefaultMIMEParts+10, `boundary*0="x"; boundary*1="y"`, "xy"), true, "part"},
		{"RFC 2231 ordinary nesting", nestedAs(6, continuedBoundary, true), false, "innermost"},
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

// TestBoundaryForms checks that each boundary syntax the tests use is one
// enmime reads, so that the limit tests on them test a real bypass.
func TestBoundaryForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		param func(i int) string
	}{
		{"plain", plainBoundary},
		{"RFC 2231 continuation", continuedBoundary},
		{"RFC 2231 charset", charsetBoundary},
		{"RFC 2231 continued charset", continuedCharsetBoundary},
		{"RFC 2047 encoded parameter", encodedBoundary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, err := parser.ReadParts(strings.NewReader(nestedAs(3, tt.param, true)))
			require.NoError(t, err)
			depth := 0
			for p := root; p != nil && p.Boundary != ""; p = p.FirstChild {
				require.Equal(t, fmt.Sprintf("b%d", depth), p.Boundary)
				depth++
			}
			require.Equal(t, 3, depth, "enmime nests the parts")
		})
	}
}

// TestCheckShape: the limits hold whatever the syntax of the boundaries,
// and where a boundary cannot be read, against bounds that do not need it.
func TestCheckShape(t *testing.T) {
	t.Parallel()
	over := DefaultMIMEDepth + 1
	manyDashes := "Content-Type: text/plain\r\n\r\n" + strings.Repeat("-- sql comment\r\n", DefaultMIMEParts+1)
	tests := []struct {
		name    string
		raw     string
		wantErr string // empty for none
	}{
		{"plain within", nested(DefaultMIMEDepth), ""},
		{"RFC 2231 within", nestedAs(DefaultMIMEDepth, continuedBoundary, false), ""},
		{"plain past depth", nestedAs(over, plainBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep"},
		{"RFC 2231 continuation past depth", nestedAs(over, continuedBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep"},
		{"RFC 2231 charset past depth", nestedAs(over, charsetBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep"},
		{"RFC 2231 continued charset past depth", nestedAs(over, continuedCharsetBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep"},
		{"RFC 2047 encoded parameter past depth", nestedAs(over, encodedBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts nest at least 13 deep"},
		{"RFC 2231 past parts", flatAs(DefaultMIMEParts+1, `boundary*0="x"; boundary*1="y"`, "xy"), "FETCHER_MAX_MIME_PARTS=500: the message has 501 MIME parts"},
		{"RFC 2231 charset past parts", flatAs(DefaultMIMEParts+1, "boundary*=utf-8'en'xy", "xy"), "FETCHER_MAX_MIME_PARTS=500: the message has 501 MIME parts"},
		{"unread boundaries within", nestedAs(DefaultMIMEDepth, unreadBoundary, false), ""},
		{"unread boundaries past depth", nestedAs(over, unreadBoundary, false), "FETCHER_MAX_MIME_DEPTH=12: MIME parts may nest 13 deep; a boundary could not be read"},
		{"unread boundary past parts", flatAs(DefaultMIMEParts+1, "boundary*0*=x", "x"), "FETCHER_MAX_MIME_PARTS=500: the message may have more than 500 MIME parts; a boundary could not be read"},
		{"multipart without boundary past parts", flatAs(DefaultMIMEParts+1, "charset=us-ascii", "x"), "FETCHER_MAX_MIME_PARTS=500: the message may have more than 500 MIME parts"},
		{"many dash lines, no multipart", manyDashes, ""},
		{"many dash lines, readable boundary", flat(1) + manyDashes, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkShape([]byte(tt.raw), Limits{}.withDefaults())
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "over the limit "+tt.wantErr)
		})
	}
}
