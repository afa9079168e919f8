package tnef

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrebufLength(t *testing.T) {
	assert.Len(t, rtfPrebuf, 207, "MS-OXRTFCP initial dictionary")
}

// specExample is the compressed stream of MS-OXRTFCP section 4.1
// ("Compressing a simple string").
var specExample = []byte{
	0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7, 0xa7,
	0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a, 0xf3, 0x20,
	0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f,
	0xa0,
}

const specExampleRTF = "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"

func TestDecompressSpecExample(t *testing.T) {
	out, err := decompressRTF(specExample, maxRTFSize)
	require.NoError(t, err, "the CRC in the example must match")
	assert.Equal(t, specExampleRTF, string(out))
}

// TestCompressSpecExample checks the test compressor against the spec: its
// greedy longest match happens to make the same choices as the example.
func TestCompressSpecExample(t *testing.T) {
	got, _ := compressRTF([]byte(specExampleRTF))
	assert.Equal(t, specExample, got)
}

func TestRTFCompressionRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 20000)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	var repeated strings.Builder
	for i := range 600 {
		repeated.WriteString("{\\par line ")
		repeated.WriteByte(byte('a' + i%26))
		repeated.WriteString("}\r\n")
	}
	tests := map[string][]byte{
		"empty":        {},
		"one byte":     {'x'},
		"encapsulated": []byte(encapsulatedRTF),
		"run":          bytes.Repeat([]byte{'x'}, 5000), // overlapping copies, dictionary wrap
		"repeated":     []byte(repeated.String()),
		"random":       random,
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			comp, stats := compressRTF(raw)
			out, err := decompressRTF(comp, maxRTFSize)
			require.NoError(t, err)
			assert.Equal(t, raw, out)
			if len(raw) > 100 && name != "random" {
				assert.Positive(t, stats.refs)
				assert.Less(t, len(comp), len(raw))
			}
			if name == "encapsulated" {
				assert.Positive(t, stats.literals)
			}
		})
	}
}

func TestDecompressRTFErrors(t *testing.T) {
	good, _ := compressRTF([]byte(encapsulatedRTF))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-5] ^= 0x01
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		want    string // prefix of the expected output
	}{
		{"short header", good[:10], ErrTruncated, ""},
		{"truncated body", good[:len(good)/2], ErrTruncated, encapsulatedRTF[:100]},
		{"bad crc", badCRC, ErrCRC, encapsulatedRTF[:100]},
		{"mela truncated", storeRTF([]byte("{\\rtf1 abc}"))[:20], ErrTruncated, "{\\rt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := decompressRTF(tt.data, maxRTFSize)
			require.ErrorIs(t, err, tt.wantErr)
			assert.True(t, strings.HasPrefix(string(out), tt.want), "got %q", out)
		})
	}

	unknown := bytes.Clone(good)
	copy(unknown[8:], "XXXX")
	_, err := decompressRTF(unknown, maxRTFSize)
	require.ErrorContains(t, err, "unknown compressed RTF type")

	small := bytes.Clone(good)
	copy(small, le32(3))
	_, err = decompressRTF(small, maxRTFSize)
	assert.ErrorContains(t, err, "smaller than its header")
}

// TestDecompressRTFBounded: a body of references that never ends expands at
// most about 9x, whatever the header claims.
func TestDecompressRTFBounded(t *testing.T) {
	body := bytes.Repeat([]byte{0xFF, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F}, 1000)
	data := append(append(append(le32(uint32(len(body)+12)), le32(0xFFFFFFFF)...), le32(compLZFu)...), le32(rtfCRC(body))...)
	data = append(data, body...)
	start := time.Now()
	out, err := decompressRTF(data, maxRTFSize)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(out), 9*len(body)+dictSize)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestIsEncapsulatedHTML(t *testing.T) {
	tests := map[string]bool{
		encapsulatedRTF: true,
		`{\rtf1\ansi\fbidis\ansicpg1252\deff0\fromhtml1 x}`: true,
		`{\rtf1\ansi\ansicpg1252\fromtext \deff0 x}`:        false,
		`{\rtf1\ansi\ansicpg1252\fromhtml0 x}`:              false,
		`{\rtf1\ansi\ansicpg1252\deff0\pard hello}`:         false,
		`{\rtf1\a\b\c\d\e\f\g\h\i\j\k\fromhtml1 too late}`:  false,
		"": false,
	}
	for rtf, want := range tests {
		assert.Equal(t, want, isEncapsulatedHTML([]byte(rtf)), rtf)
	}
}

func TestRTFHTML(t *testing.T) {
	const head = `{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}{\f1\fnil\fcharset128 MS Gothic;}}`
	tests := []struct {
		name, rtf, want string
	}{
		{"outlook message", encapsulatedRTF, wantHTML},
		{"tags only", head + `{\*\htmltag19 <html>}{\*\htmltag27 </html>}}`, "<html></html>"},
		{"htmlrtf hides rtf rendering", head + `{\*\htmltag64 <p>}\htmlrtf {\b bold\par}\htmlrtf0 x}`, "<p>x"},
		{"htmlrtf1 and nesting", head + `\htmlrtf1 a{\htmlrtf0 b}c\htmlrtf0 d}`, "bd"},
		{"htmlrtf restored at group end", head + `{\htmlrtf a}b}`, "b"},
		{"par and tab in tag", head + `{\*\htmltag0 \par \tab x}}`, "\r\n\tx"},
		{"line outside tag", head + `a\line b}`, "a\r\nb"},
		{"escapes", head + `{\*\htmltag84 <a title="\{\}\\">}x}`, `<a title="{}\">x`},
		{"hex in tag uses ansicpg", head + `{\*\htmltag84 <!-- \'e4 -->}}`, "<!-- ä -->"},
		{"hex outside tag uses font charset", head + `{\f1 \'82\'a0}}`, "あ"},
		{"unicode with fallback", head + `\u8364?\uc2\u8364??x}`, "€€x"},
		{"unicode in tag", head + `{\*\htmltag84 <b title="\u20320?">}}`, `<b title="你">`},
		{"other destinations skipped", head + `{\*\mhtmltag84 <img src="x">}{\*\bkmkstart a}{\colortbl;\red1;}x}`, "x"},
		{"text after document ignored", head + `x}trailing{more}`, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, rtfHTML([]byte(tt.rtf)))
		})
	}
}

func TestRTFText(t *testing.T) {
	tests := []struct {
		name, rtf, want string
	}{
		{"plain", `{\rtf1\ansi Hello\par World}`, "Hello\nWorld"},
		{"tables and info skipped",
			`{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}{\colortbl;\red255\green0\blue0;}{\stylesheet{\s0 Normal;}}` +
				`{\info{\title T}{\author A}}{\*\generator Riched20}\pard Text\par}`, "Text\n"},
		{"ignorable destinations", `{\rtf1 a{\*\unknown hidden}{\*\htmltag64 <p>}b}`, "ab"},
		{"hex windows-1252 by default", `{\rtf1 M\'e4rz \'80}`, "März €"},
		{"ansicpg", `{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}`, "Привет"},
		{"font charset", `{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}{\f1\fcharset204 Arial Cyr;}}\f0 \'e4{\f1 \'e4}\'e4}`, "äдä"},
		{"shift-jis pair with literal trail byte", `{\rtf1\ansi\ansicpg932 \'83e\'83X\'83g}`, "テスト"},
		{"unicode uc1", `{\rtf1 \u8364?x}`, "€x"},
		{"unicode uc0", `{\rtf1\uc0 \u8364 x}`, "€x"},
		{"unicode uc2 with hex fallback", `{\rtf1\uc2\u8364\'80\'80x}`, "€x"},
		{"unicode negative", `{\rtf1 \u-4064?}`, "\uF020"},
		{"surrogate pair", `{\rtf1 \u-10179?\u-8704?}`, "😀"},
		{"lone surrogate", `{\rtf1 \u-10179?x}`, "\uFFFDx"},
		{"uc scoped to group", `{\rtf1 {\uc3 a}\u8364?b}`, "a€b"},
		{"tab line par", `{\rtf1 a\tab b\line c\par d}`, "a\tb\nc\nd"},
		{"escapes", `{\rtf1 \{a\}\\b\~c\_d\-e}`, "{a}\\b\u00A0c-de"},
		{"special characters", `{\rtf1 \lquote x\rquote  \emdash\endash\bullet}`, "‘x’ —–•"},
		{"bin skipped", "{\\rtf1 a\\bin3 }}}b}", "ab"},
		{"pict skipped", `{\rtf1 a{\pict\pngblip 89504e47}b}`, "ab"},
		{"field result kept", `{\rtf1 {\field{\*\fldinst HYPERLINK "x"}{\fldrslt link}}}`, "link"},
		{"backslash newline is par", "{\\rtf1 a\\\nb}", "a\nb"},
		{"source line breaks ignored", "{\\rtf1 a\r\nb}", "ab"},
		{"htmlrtf is not special", `{\rtf1\fromhtml1 {\*\htmltag64 <p>}\htmlrtf x\htmlrtf0 y}`, "xy"},
		{"unbalanced", `}{\rtf1 a}}}b{c`, "a"},
		{"unterminated", `{\rtf1 a{\b b`, "ab"},
		{"empty", ``, ""},
		{"long parameter", `{\rtf1 \u99999999999999?x}`, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, RTFText([]byte(tt.rtf)))
		})
	}
}

func TestRTFDeepNesting(t *testing.T) {
	deep := "{\\rtf1 a" + strings.Repeat("{", 100000) + "hidden" + strings.Repeat("}", 100000) + "b}"
	assert.Equal(t, "ab", RTFText([]byte(deep)))
	assert.Empty(t, rtfHTML([]byte(strings.Repeat("{", 100000))))

	shallow := "{\\rtf1 a" + strings.Repeat("{", 500) + "c" + strings.Repeat("}", 500) + "b}"
	assert.Equal(t, "acb", RTFText([]byte(shallow)))
}

func TestRTFTextValidUTF8(t *testing.T) {
	out := RTFText([]byte("{\\rtf1\\ansi\\ansicpg65001 \\'ff\\'fe \xff\xfe}"))
	assert.True(t, utf8.ValidString(out), "%q", out)
}
