package ticket

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage builds a typical support mail of about 20 KB: a quoted
// multipart/alternative body and a small base64 attachment.
func benchMessage() []byte {
	var text, html strings.Builder
	for i := range 80 {
		fmt.Fprintf(&text, "> Line %d of the quoted conversation, with umlauts: Grüße aus Köln.\n", i)
		fmt.Fprintf(&html, "<p>Line %d of the quoted conversation, with umlauts: Grüße aus Köln.</p>\n", i)
	}
	blob := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x89PNG fake image data ", 300)))
	var b strings.Builder
	b.WriteString("From: =?utf-8?Q?J=C3=BCrgen?= <j@example.de>\nTo: support@example.org\n" +
		"Subject: =?utf-8?Q?Re:_Gr=C3=BC=C3=9Fe?=\nDate: Mon, 3 Jun 2024 10:00:00 +0200\n" +
		"Message-ID: <bench@example.de>\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=outer\n\n--outer\n" +
		"Content-Type: multipart/alternative; boundary=inner\n\n--inner\n" +
		"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	b.WriteString(text.String())
	b.WriteString("\n--inner\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	b.WriteString(html.String())
	b.WriteString("\n--inner--\n--outer\nContent-Type: image/png; name=shot.png\n" +
		"Content-Disposition: attachment; filename=shot.png\nContent-Transfer-Encoding: base64\n\n")
	for len(blob) > 76 {
		b.WriteString(blob[:76] + "\n")
		blob = blob[76:]
	}
	b.WriteString(blob + "\n--outer--\n")
	return []byte(strings.ReplaceAll(b.String(), "\n", "\r\n"))
}

func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if m := Parse(raw); m.ParseError != "" {
			b.Fatalf("Parse() ParseError = %q", m.ParseError)
		}
	}
}
