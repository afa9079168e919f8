package ticket

import (
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// stringFields returns every string Parse fills, by name.
func stringFields(m *Message) map[string]string {
	f := map[string]string{
		"MessageID": m.MessageID, "InReplyTo": m.InReplyTo, "References": m.References,
		"FromEmail": m.FromEmail, "FromName": m.FromName, "To": m.To, "Cc": m.Cc,
		"Subject": m.Subject, "BodyText": m.BodyText, "BodyHTML": m.BodyHTML, "BodyHTMLSafe": m.BodyHTMLSafe,
		"ParseError": m.ParseError,
	}
	for i, a := range m.Attachments {
		for k, v := range map[string]string{
			"Filename": a.Filename, "ContentType": a.ContentType,
			"ContentID": a.ContentID, "SHA256": a.SHA256,
		} {
			f["Attachments["+string(rune('0'+i%10))+"]."+k] = v
		}
	}
	return f
}

// requireClean fails unless every string of m is valid UTF-8 without NUL.
func requireClean(t testing.TB, m *Message) {
	t.Helper()
	for name, v := range stringFields(m) {
		require.True(t, utf8.ValidString(v), "%s = %q is not valid UTF-8", name, v)
		require.False(t, strings.ContainsRune(v, 0), "%s = %q contains NUL", name, v)
	}
}

func FuzzParse(f *testing.F) {
	files, err := os.ReadDir("testdata")
	require.NoError(f, err)
	for _, e := range files {
		if strings.HasSuffix(e.Name(), ".eml") {
			raw, err := os.ReadFile("testdata/" + e.Name())
			require.NoError(f, err)
			f.Add(raw)
		}
	}
	f.Add([]byte("Subject: =?utf-8?B?AA==?=\r\n\r\n\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		m := Parse(raw)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse took %v", d)
		}
		require.Equal(t, int64(len(raw)), m.Size)
		require.NotEmpty(t, m.MessageID)
		requireClean(t, m)
		_ = m.ReferencedIDs()
		_ = ThreadSubject(m.Subject)
	})
}

// FuzzParseWithLimits runs Parse's checks under limits small enough for
// fuzzed input to pass every one, and checks that what is kept stays
// within them.
func FuzzParseWithLimits(f *testing.F) {
	files, err := os.ReadDir("testdata")
	require.NoError(f, err)
	for _, e := range files {
		if strings.HasSuffix(e.Name(), ".eml") {
			raw, err := os.ReadFile("testdata/" + e.Name())
			require.NoError(f, err)
			f.Add(raw)
		}
	}
	f.Add([]byte(withAttachments(3)))
	f.Add([]byte(withDepth(4)))
	f.Add(withWinmail(tnefWithFiles(3)))
	lim := Limits{HeaderBytes: 512, HeaderFields: 12, MIMEDepth: 3, MIMEParts: 6, Attachments: 2, DecodedBytes: 256}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := ParseWith(raw, lim)
		require.Equal(t, int64(len(raw)), m.Size)
		require.NotEmpty(t, m.MessageID)
		requireClean(t, m)
		require.LessOrEqual(t, len(m.Attachments), lim.Attachments)
		decoded := len(m.BodyHTML)
		for _, a := range m.Attachments {
			decoded += len(a.Data)
		}
		require.LessOrEqual(t, int64(decoded), lim.DecodedBytes, "HTML body and attachments")
	})
}
