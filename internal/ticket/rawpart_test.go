package ticket

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"
)

func TestDecodeTransfer(t *testing.T) {
	tests := []struct {
		name, cte, in, want string
	}{
		{"base64", "base64", "aGVsbG8gd29ybGQ=", "hello world"},
		{"base64 upper case name and lines", "BASE64", "aGVs\r\nbG8g\r\nd29y\r\nbGQ=\r\n", "hello world"},
		{"base64 missing padding", "base64", "aGVsbG8", "hello"},
		{"base64 stray characters", "base64", "aGV*sb!G8=", "hello"},
		{"base64 lone trailing character", "base64", "aGVsbG8gx", "hello "},
		{"quoted-printable", "quoted-printable", "f=FCr =\r\nden", "f\xfcr den"},
		{"quoted-printable bad escape kept as written", "quoted-printable", "a=ZZb", "a=ZZb"},
		{"quoted-printable keeps control bytes", "quoted-printable", "Page 1 M=FCller\r\n\x0cPage 2\r\n", "Page 1 M\xfcller\r\n\x0cPage 2\r\n"},
		{"quoted-printable soft break after trailing space", "quoted-printable", "a= \r\nb=\nc", "abc"},
		{"quoted-printable lower-case hex and trailing =", "quoted-printable", "=e4=", "\xe4="},
		{"7bit unchanged", "7bit", "plain\r\n", "plain\r\n"},
		{"none unchanged", "", "\xe4\r\n", "\xe4\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(decodeTransfer([]byte(tt.in), tt.cte)))
		})
	}
}

// TestTextAttachmentKeepsSenderBytes: a windows-1252 CSV must be stored as
// the sender's file, not converted to UTF-8 like a body, so that its
// sha256 matches the same file sent elsewhere.
func TestTextAttachmentKeepsSenderBytes(t *testing.T) {
	m := Parse(readFixture(t, "text-attachments"))
	require.Empty(t, m.ParseError)
	require.Len(t, m.Attachments, 2)
	csv, err := charmap.Windows1252.NewEncoder().String("Kunde;Straße;Betrag\r\nMüller;Hauptstraße 1;12,50 €\r\n")
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(csv))
	require.Equal(t, csv, string(m.Attachments[0].Data))
	require.Equal(t, hex.EncodeToString(sum[:]), m.Attachments[0].SHA256)
	require.Equal(t, "Notizen f\xfcr den Techniker: Ger\xe4t steht im B\xfcro.\r\n", string(m.Attachments[1].Data))
}
