package ticket

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// golden is the JSON form of a parsed Message kept in testdata: attachment
// data is replaced by its size and hash, and the threading helpers' results
// are included.
type golden struct {
	MessageID       string
	InReplyTo       string
	References      string
	ReferencedIDs   []string
	FromEmail       string
	FromName        string
	To, Cc          string
	Subject         string
	ThreadSubject   string
	SentAt          time.Time
	BodyText        string
	BodyHTML        string
	BodyHTMLSafe    string
	IsAutoReply     bool
	NoAutoResponse  bool
	ReturnedSubject string
	Attachments     []goldenAttachment
	Size            int64
	ParseError      string
}

// goldenAttachment is an Attachment without its data.
type goldenAttachment struct {
	Filename, ContentType, ContentID string
	Inline                           bool
	Size                             int
	SHA256                           string
}

func toGolden(m *Message) golden {
	g := golden{
		MessageID: m.MessageID, InReplyTo: m.InReplyTo, References: m.References,
		ReferencedIDs: m.ReferencedIDs(), FromEmail: m.FromEmail, FromName: m.FromName,
		To: m.To, Cc: m.Cc, Subject: m.Subject, ThreadSubject: ThreadSubject(m.Subject),
		SentAt: m.SentAt, BodyText: m.BodyText, BodyHTML: m.BodyHTML, BodyHTMLSafe: m.BodyHTMLSafe,
		IsAutoReply: m.IsAutoReply, NoAutoResponse: m.NoAutoResponse,
		ReturnedSubject: m.ReturnedSubject, Size: m.Size, ParseError: m.ParseError,
	}
	for _, a := range m.Attachments {
		g.Attachments = append(g.Attachments, goldenAttachment{
			Filename: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID,
			Inline: a.Inline, Size: len(a.Data), SHA256: a.SHA256,
		})
	}
	return g
}

func marshalGolden(t *testing.T, m *Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(toGolden(m)))
	return buf.Bytes()
}

func fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
	require.NoError(t, err)
	return raw
}

func TestParseGolden(t *testing.T) {
	t.Parallel()
	for _, path := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".eml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireGolden(t, name, Parse(readFixture(t, name)))
		})
	}
}

// requireGolden compares m with testdata/NAME.golden.json, or rewrites the
// file with -update.
func requireGolden(t *testing.T, name string, m *Message) {
	t.Helper()
	got := marshalGolden(t, m)
	goldenPath := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.WriteFile(goldenPath, got, 0o644))
	}
	want, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "Parse(%s) differs from %s (rerun with -update after checking)", name, goldenPath)
}
