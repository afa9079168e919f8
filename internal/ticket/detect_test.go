package ticket

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"
)

func TestDetectCharset(t *testing.T) {
	const russian = "Здравствуйте! Не могу войти в личный кабинет, пишет что пароль неверный. Прошу помочь как можно скорее."
	koi8, err := charmap.KOI8R.NewEncoder().String(russian)
	require.NoError(t, err)
	tests := []struct {
		name, in, want string
	}{
		{"valid UTF-8 is kept", "Grüße", "Grüße"},
		{"ASCII is kept", "hello", "hello"},
		{"undeclared KOI8-R paragraph is detected", koi8, russian},
		{"short Latin-1 is left for clean's windows-1252", "caf\xe9", "caf\xe9"},
		{"mostly UTF-8 with a stray byte is left alone", "Grüße aus Köln \xe9", "Grüße aus Köln \xe9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, detectCharset(tt.in, false))
		})
	}
}
