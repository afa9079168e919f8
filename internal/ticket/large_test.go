package ticket

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// largeMessage builds a scanner's mail with a PDF attachment of size
// bytes, base64 in 76-character lines as mailers send it. The bytes are
// pseudo-random from a fixed seed, so the golden hash is stable and the
// content does not compress.
func largeMessage(size int) (raw, data []byte) {
	data = make([]byte, size)
	rng := rand.NewChaCha8([32]byte{'f', 'e', 't', 'c', 'h', 'e', 'r'})
	_, _ = rng.Read(data)
	encoded := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.Grow(len(encoded)*78/76 + 1024)
	b.WriteString("From: Scanner <scanner@example.org>\r\nTo: support@example.org\r\n" +
		"Subject: Scanned contract\r\nDate: Wed, 29 May 2024 14:00:00 +0200\r\n" +
		"Message-ID: <scan-25mb@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=scan\r\n\r\n--scan\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n--scan\r\n" +
		"Content-Type: application/pdf; name=contract.pdf\r\n" +
		"Content-Disposition: attachment; filename=contract.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(encoded) > 76 {
		b.WriteString(encoded[:76])
		b.WriteString("\r\n")
		encoded = encoded[76:]
	}
	b.WriteString(encoded + "\r\n--scan--\r\n")
	return b.Bytes(), data
}

// TestParseLargeAttachment: a 25 MB attachment (the Gmail and Outlook.com
// sending limit) decodes whole and exact.
func TestParseLargeAttachment(t *testing.T) {
	t.Parallel()
	raw, data := largeMessage(25 << 20)
	m := Parse(raw)
	require.Len(t, m.Attachments, 1)
	require.True(t, bytes.Equal(data, m.Attachments[0].Data), "attachment bytes differ")
	requireGolden(t, "large-attachment", m)
}

func BenchmarkParseLargeAttachment(b *testing.B) {
	raw, _ := largeMessage(25 << 20)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if m := Parse(raw); len(m.Attachments) != 1 {
			b.Fatalf("Parse() found %d attachments", len(m.Attachments))
		}
	}
}
