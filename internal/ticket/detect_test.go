package ticket

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"
)

func TestRepairPart(t *testing.T) {
	const russian = "Здравствуйте! Не могу войти в личный кабинет, пишет что пароль неверный. Прошу помочь как можно скорее."
	koi8, err := charmap.KOI8R.NewEncoder().String(russian)
	require.NoError(t, err)
	// What enmime makes of UTF-8 labelled ISO-8859-1: each byte a character.
	mojibake, err := charmap.ISO8859_1.NewDecoder().String("Grüße für Sie – danke")
	require.NoError(t, err)
	tests := []struct {
		name, in, charset, want string
	}{
		{"valid UTF-8 is kept", "Grüße", "utf-8", "Grüße"},
		{"ASCII is kept", "hello", "", "hello"},
		{"undeclared KOI8-R paragraph is detected", koi8, "", russian},
		{"unknown charset is detected too", koi8, "x-unknown", russian},
		{"a few Latin-1 bytes are left for clean's windows-1252", "na\xefve caf\xe9", "", "na\xefve caf\xe9"},
		{"mostly UTF-8 with a stray byte is left alone", "Grüße aus Köln \xe9", "", "Grüße aus Köln \xe9"},
		{"UTF-8 labelled ISO-8859-1 is read as UTF-8", mojibake, "ISO-8859-1", "Grüße für Sie – danke"},
		{"UTF-8 labelled us-ascii is read as UTF-8", mojibake, "us-ascii", "Grüße für Sie – danke"},
		{"real Latin-1 stays", "Grüße für Sie", "iso-8859-1", "Grüße für Sie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(repairPart([]byte(tt.in), tt.charset, false)))
		})
	}
}

// TestCharsetPerPart: a UTF-8 part and an undeclared Latin-1 part in one
// message each keep their own text.
func TestCharsetPerPart(t *testing.T) {
	latin := "Bonjour, le fichier est arriv\xe9. " // 8-bit, no charset
	raw := "From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCafé – über\r\n" +
		"--b\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\n" + latin + latin + latin + "\r\n--b--\r\n"
	m := Parse([]byte(raw))
	require.Contains(t, m.BodyText, "Café – über")
	require.Contains(t, m.BodyText, "arrivé")
}
