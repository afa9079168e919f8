package ticket

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"ascii", "hello", "hello"},
		{"utf-8 kept", "Grüße 日本 🎉", "Grüße 日本 🎉"},
		{"replacement char kept", "a\uFFFDb", "a\uFFFDb"},
		{"nul removed", "a\x00b\x00", "ab"},
		{"latin-1 byte read as windows-1252", "caf\xe9", "café"},
		{"windows-1252 quotes", "\x93hi\x94 \x80", "“hi” €"},
		{"c1 controls from iso-8859-1 decoding", "\u0093hi\u0094", "“hi”"},
		{"truncated utf-8", "ok\xe2\x82", "okâ‚"},
		{"mixed", "Gr\xfc\xdfe \u00fc\x00", "Grüße ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := clean(tt.in)
			require.Equal(t, tt.want, got, "clean(%q)", tt.in)
			require.True(t, utf8.ValidString(got), "clean(%q) = %q is not UTF-8", tt.in, got)
			require.Equal(t, got, clean(got), "clean is not idempotent on %q", tt.in)
		})
	}
}

func TestRawToUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, hint, want string
	}{
		{"utf-8 kept whatever the hint", "Grüße", "koi8-r", "Grüße"},
		{"koi8-r bytes", "\xf0\xd2\xcf\xc2\xcc\xc5\xcd\xc1", "koi8-r", "Проблема"},
		{"shift_jis bytes", "\x93\xfa\x96\x7b", "shift_jis", "日本"},
		{"unencoded iso-2022-jp", "\x1b$BF|K\\\x1b(B", "", "日本"},
		{"unknown hint leaves bytes for clean", "caf\xe9", "x-unknown", "caf\xe9"},
		{"no hint", "caf\xe9", "", "caf\xe9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, rawToUTF8(tt.in, tt.hint), "rawToUTF8(%q, %q)", tt.in, tt.hint)
		})
	}
}
